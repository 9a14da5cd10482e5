package iamcheck

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
)

// LoadRoles reads every role of the account cfg acts in, with its inline
// and attached policies, from moto's IAM after the CloudFormation deploys:
// moto has resolved the templates' intrinsics, so the documents are the
// ones AWS would evaluate. cfg must name moto as its BaseEndpoint. Each role
// is labelled with its logical ID (from the account's stacks in cfg's
// region) without the CDK's hash.
//
// IAM is read with plain query requests: moto does not check signatures,
// only the access key (which selects the account).
func LoadRoles(ctx context.Context, cfg aws.Config) ([]Role, error) {
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("iamcheck: credentials: %w", err)
	}
	q := &iamQuery{endpoint: aws.ToString(cfg.BaseEndpoint), key: creds.AccessKeyID,
		client: &http.Client{Timeout: 30 * time.Second}}
	labels, err := roleLabels(ctx, cloudformation.NewFromConfig(cfg))
	if err != nil {
		return nil, err
	}
	var list struct {
		Roles []struct {
			Name string `xml:"RoleName"`
			ARN  string `xml:"Arn"`
		} `xml:"ListRolesResult>Roles>member"`
	}
	if err := q.do(ctx, url.Values{"Action": {"ListRoles"}, "MaxItems": {"1000"}}, &list); err != nil {
		return nil, err
	}
	var roles []Role
	for _, r := range list.Roles {
		role := Role{ARN: r.ARN, Account: arnField(r.ARN, 4), Label: labels[r.Name]}
		if m := generatedName.FindStringSubmatch(r.Name); role.Label == "" && m != nil {
			// A role of a stack in another region: moto names it
			// <stack>-<logical ID>-<suffix>.
			role.Label = m[1]
		}
		if role.Label == "" {
			role.Label = r.Name
		}
		if role.Statements, err = q.rolePolicies(ctx, r.Name); err != nil {
			return nil, err
		}
		roles = append(roles, role)
	}
	return roles, nil
}

var (
	cdkHash       = regexp.MustCompile(`[0-9A-F]{8}$`)
	generatedName = regexp.MustCompile(`-([A-Za-z0-9]+?)[0-9A-F]{8}-[A-Z0-9]+$`)
)

// roleLabels maps the physical name of every role in the account's stacks
// to its logical ID without the CDK's hash.
func roleLabels(ctx context.Context, cfn *cloudformation.Client) (map[string]string, error) {
	labels := map[string]string{}
	stacks, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{})
	if err != nil {
		return nil, fmt.Errorf("iamcheck: describe stacks: %w", err)
	}
	for _, s := range stacks.Stacks {
		out, err := cfn.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{StackName: s.StackName})
		if err != nil {
			return nil, fmt.Errorf("iamcheck: resources of %s: %w", aws.ToString(s.StackName), err)
		}
		for _, r := range out.StackResources {
			if aws.ToString(r.ResourceType) != "AWS::IAM::Role" {
				continue
			}
			id := aws.ToString(r.LogicalResourceId)
			if len(id) > 8 {
				id = cdkHash.ReplaceAllString(id, "")
			}
			name := aws.ToString(r.PhysicalResourceId)
			if i := strings.LastIndexByte(name, '/'); i >= 0 {
				name = name[i+1:]
			}
			labels[name] = id
		}
	}
	return labels, nil
}

type iamQuery struct {
	endpoint, key string
	client        *http.Client
}

func (q *iamQuery) rolePolicies(ctx context.Context, role string) ([]Statement, error) {
	var stmts []Statement
	var inline struct {
		Names []string `xml:"ListRolePoliciesResult>PolicyNames>member"`
	}
	if err := q.do(ctx, url.Values{"Action": {"ListRolePolicies"}, "RoleName": {role}}, &inline); err != nil {
		return nil, err
	}
	for _, name := range inline.Names {
		var doc struct {
			Document string `xml:"GetRolePolicyResult>PolicyDocument"`
		}
		if err := q.do(ctx, url.Values{"Action": {"GetRolePolicy"}, "RoleName": {role}, "PolicyName": {name}}, &doc); err != nil {
			return nil, err
		}
		s, err := parseEncoded(name, doc.Document)
		if err != nil {
			return nil, err
		}
		stmts = append(stmts, s...)
	}
	var attached struct {
		ARNs []string `xml:"ListAttachedRolePoliciesResult>AttachedPolicies>member>PolicyArn"`
	}
	if err := q.do(ctx, url.Values{"Action": {"ListAttachedRolePolicies"}, "RoleName": {role}}, &attached); err != nil {
		return nil, err
	}
	for _, arn := range attached.ARNs {
		var pol struct {
			Version string `xml:"GetPolicyResult>Policy>DefaultVersionId"`
		}
		if err := q.do(ctx, url.Values{"Action": {"GetPolicy"}, "PolicyArn": {arn}}, &pol); err != nil {
			return nil, err
		}
		var ver struct {
			Document string `xml:"GetPolicyVersionResult>PolicyVersion>Document"`
		}
		if err := q.do(ctx, url.Values{"Action": {"GetPolicyVersion"}, "PolicyArn": {arn}, "VersionId": {pol.Version}}, &ver); err != nil {
			return nil, err
		}
		s, err := parseEncoded(arn, ver.Document)
		if err != nil {
			return nil, err
		}
		stmts = append(stmts, s...)
	}
	return stmts, nil
}

// parseEncoded parses a policy document that IAM returns URL-encoded.
func parseEncoded(name, doc string) ([]Statement, error) {
	doc = strings.TrimSpace(doc)
	if !strings.HasPrefix(doc, "{") {
		d, err := url.QueryUnescape(doc)
		if err != nil {
			return nil, fmt.Errorf("iamcheck: policy %s: %w", name, err)
		}
		doc = d
	}
	stmts, err := ParseDocument(name, []byte(doc))
	if err != nil && strings.HasPrefix(doc, "{'") {
		// moto returns the inline policies of a CloudFormation role as a
		// Python dict's repr; policy documents hold no quotes of their own.
		return ParseDocument(name, []byte(pythonRepr.Replace(doc)))
	}
	return stmts, err
}

var pythonRepr = strings.NewReplacer("'", `"`, ": True", ": true", ": False", ": false", ": None", ": null")

func (q *iamQuery) do(ctx context.Context, form url.Values, out any) error {
	form.Set("Version", "2010-05-08")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(q.endpoint, "/")+"/", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+q.key+"/"+time.Now().UTC().Format("20060102")+
		"/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := q.client.Do(req)
	if err != nil {
		return fmt.Errorf("iamcheck: iam %s: %w", form.Get("Action"), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("iamcheck: iam %s: %w", form.Get("Action"), err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("iamcheck: iam %s: HTTP %d: %.300s", form.Get("Action"), resp.StatusCode, body)
	}
	if err := xml.Unmarshal(body, out); err != nil {
		return fmt.Errorf("iamcheck: iam %s: %w", form.Get("Action"), err)
	}
	return nil
}

func arnField(arn string, i int) string {
	f := strings.SplitN(arn, ":", 6)
	if len(f) < 6 {
		return ""
	}
	return f[i]
}
