package app

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/ec2patch/ec2patch/constructs/spoke"
	"github.com/ec2patch/ec2patch/internal/contract"
)

// conditionsOf flattens a statement's Condition block to "operator/key"
// -> value rendered as text.
func conditionsOf(s map[string]any) map[string]string {
	got := map[string]string{}
	cond, _ := s["Condition"].(map[string]any)
	for op, kv := range cond {
		for k, v := range kv.(map[string]any) {
			got[op+"/"+k] = flat(v)
		}
	}
	return got
}

// roleStatementsOf lists the statements of a role's inline policies.
func roleStatementsOf(role map[string]any) []map[string]any {
	var out []map[string]any
	for _, pol := range list(role["Policies"]) {
		out = append(out, statements(pol.(map[string]any)["PolicyDocument"])...)
	}
	return out
}

// spokeTemplate synthesizes SpokeStack alone with props, in an app of its
// own: the shared dev app has no organization ID.
func spokeTemplate(t *testing.T, props spoke.StackProps) (tmpl map[string]any) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("synthesizing the spoke: %v", r)
		}
	}()
	a := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"aws:cdk:bundling-stacks": []any{}}})
	s := spoke.NewStack(a, "Spoke", &props)
	return templateJSON(s.Stack)
}

func onlyRole(t *testing.T, tmpl map[string]any) map[string]any {
	t.Helper()
	roles := resources(tmpl, "AWS::IAM::Role")
	if len(roles) != 1 {
		t.Fatalf("spoke has %d roles, want 1", len(roles))
	}
	for _, r := range roles {
		return props(r)
	}
	return nil
}

func TestSpokeTrust(t *testing.T) {
	p := shared.params
	taskRole := contract.HubTaskRoleARN("${AWS::Partition}", p.Spoke.HubAccountID, p.Hub.NamePrefix)

	t.Run("without an organization ID the trust names the role and the ExternalId only", func(t *testing.T) {
		if p.Spoke.PrincipalOrgID != "" {
			t.Skip("the dev params set an organization ID")
		}
		trust := statements(spokeRole(t)["AssumeRolePolicyDocument"])
		want := map[string]string{"StringEquals/sts:ExternalId": p.Spoke.ExternalID, "ArnEquals/aws:PrincipalArn": taskRole}
		if got := conditionsOf(trust[0]); len(trust) != 1 || !reflect.DeepEqual(got, want) {
			t.Errorf("trust conditions = %v, want %v", got, want)
		}
	})

	t.Run("an organization ID adds aws:PrincipalOrgID beside the role and the ExternalId", func(t *testing.T) {
		tmpl := spokeTemplate(t, spoke.StackProps{HubAccountID: p.Spoke.HubAccountID, HubNamePrefix: p.Hub.NamePrefix,
			ExternalID: p.Spoke.ExternalID, PrincipalOrgID: "o-abcdef1234"})
		trust := statements(onlyRole(t, tmpl)["AssumeRolePolicyDocument"])
		want := map[string]string{"StringEquals/sts:ExternalId": p.Spoke.ExternalID,
			"StringEquals/aws:PrincipalOrgID": "o-abcdef1234", "ArnEquals/aws:PrincipalArn": taskRole}
		if got := conditionsOf(trust[0]); len(trust) != 1 || !reflect.DeepEqual(got, want) {
			t.Errorf("trust conditions = %v, want %v", got, want)
		}
		if trust[0]["Effect"] != "Allow" || trust[0]["Action"] != "sts:AssumeRole" {
			t.Errorf("trust statement = %v", trust[0])
		}
	})
}

func TestSpokeSendCommand(t *testing.T) {
	sendStatements := func(role map[string]any) map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, s := range roleStatementsOf(role) {
			if slices.Contains(list(s["Action"]), any("ssm:SendCommand")) {
				out[fmt.Sprint(s["Sid"])] = s
			}
		}
		return out
	}
	check := func(t *testing.T, role map[string]any, tagKey string) {
		t.Helper()
		got := sendStatements(role)
		if len(got) != 2 {
			t.Fatalf("%d SendCommand statements %v, want the document's and the instances'", len(got), got)
		}
		doc := got["RunPatchBaselineDocument"]
		if doc == nil || flat(doc["Resource"]) != "arn:${AWS::Partition}:ssm:*::document/"+contract.PatchDocument || doc["Condition"] != nil {
			t.Errorf("document statement = %v, want AWS-RunPatchBaseline without a condition", doc)
		}
		inst := got["RunPatchBaselineOnTaggedInstances"]
		if inst == nil || flat(inst["Resource"]) != "arn:${AWS::Partition}:ec2:*:${AWS::AccountId}:instance/*" {
			t.Fatalf("instance statement = %v, want this account's instances", inst)
		}
		want := map[string]string{"StringLike/ssm:resourceTag/" + tagKey: "*"}
		if c := conditionsOf(inst); !reflect.DeepEqual(c, want) {
			t.Errorf("instance condition = %v, want %v", c, want)
		}
		for _, s := range got {
			if s["Effect"] != "Allow" || len(list(s["Action"])) != 1 {
				t.Errorf("SendCommand statement %v shares its actions or is not an Allow", s)
			}
		}
	}

	t.Run("the dev spoke sends only to instances carrying the patch tag key", func(t *testing.T) {
		check(t, spokeRole(t), shared.params.Spoke.PatchTagKey)
	})
	t.Run("the tag key comes from the props, PatchGroup by default", func(t *testing.T) {
		p := shared.params
		base := spoke.StackProps{HubAccountID: p.Spoke.HubAccountID, HubNamePrefix: p.Hub.NamePrefix, ExternalID: p.Spoke.ExternalID}
		check(t, onlyRole(t, spokeTemplate(t, base)), contract.DefaultPatchTagKey)
		base.PatchTagKey = "ops:patch-ring"
		check(t, onlyRole(t, spokeTemplate(t, base)), "ops:patch-ring")
	})
}

func TestEncryption(t *testing.T) {
	region, account := shared.params.Region, shared.params.Account
	key := props(resources(shared.hub, "AWS::KMS::Key")[keyID(t)])
	policy := statements(key["KeyPolicy"])

	t.Run("the key rotates and is retained", func(t *testing.T) {
		if key["EnableKeyRotation"] != true {
			t.Errorf("EnableKeyRotation = %v", key["EnableKeyRotation"])
		}
		if r := resources(shared.hub, "")[keyID(t)]; r["DeletionPolicy"] != "Retain" {
			t.Errorf("key DeletionPolicy = %v, want Retain: losing it loses every record", r["DeletionPolicy"])
		}
	})

	t.Run("the key policy names every service that uses the key", func(t *testing.T) {
		var viaServices, servicePrincipals []string
		for _, s := range policy {
			c := conditionsOf(s)
			cond, _ := s["Condition"].(map[string]any)
			equals, _ := cond["StringEquals"].(map[string]any)
			if v, ok := equals["kms:ViaService"]; ok {
				for _, svc := range list(v) {
					viaServices = append(viaServices, flat(svc))
				}
			}
			if pr, ok := s["Principal"].(map[string]any); ok && pr["Service"] != nil {
				svc := flat(pr["Service"])
				servicePrincipals = append(servicePrincipals, svc)
				// A service principal acts for this account only.
				if c["StringEquals/aws:SourceAccount"] != account && !strings.HasPrefix(c["ArnLike/kms:EncryptionContext:aws:logs:arn"],
					"arn:${AWS::Partition}:logs:"+region+":"+account+":") {
					t.Errorf("key statement for %s is not limited to account %s: %v", svc, account, c)
				}
			}
		}
		for _, svc := range []string{"sns", "s3", "dynamodb"} {
			if !slices.Contains(viaServices, svc+"."+region+".amazonaws.com") {
				t.Errorf("no key statement allows %s (kms:ViaService); have %v", svc, viaServices)
			}
		}
		for _, svc := range []string{"logs." + region + ".amazonaws.com", "cloudwatch.amazonaws.com"} {
			if !slices.Contains(servicePrincipals, svc) {
				t.Errorf("no key statement names the service principal %s; have %v", svc, servicePrincipals)
			}
		}
	})

	t.Run("the table, bucket, topic and log groups use the key", func(t *testing.T) {
		ref := "${" + keyID(t) + ".Arn}"
		for typ, path := range map[string][]string{
			"AWS::DynamoDB::Table": {"SSESpecification", "KMSMasterKeyId"},
			"AWS::SNS::Topic":      {"KmsMasterKeyId"},
			"AWS::Logs::LogGroup":  {"KmsKeyId"},
			"AWS::SQS::Queue":      {"KmsMasterKeyId"},
		} {
			all := resources(shared.hub, typ)
			if len(all) == 0 {
				t.Errorf("no %s", typ)
			}
			for id, r := range all {
				var v any = props(r)
				for _, k := range path {
					v = v.(map[string]any)[k]
				}
				if flat(v) != ref {
					t.Errorf("%s %s is encrypted with %s, want the hub key", typ, id, flat(v))
				}
			}
		}
		for id, r := range resources(shared.hub, "AWS::S3::Bucket") {
			enc := props(r)["BucketEncryption"].(map[string]any)["ServerSideEncryptionConfiguration"].([]any)[0].(map[string]any)
			def := enc["ServerSideEncryptionByDefault"].(map[string]any)
			if def["SSEAlgorithm"] != "aws:kms" || flat(def["KMSMasterKeyID"]) != ref {
				t.Errorf("bucket %s encryption = %v, want aws:kms with the hub key", id, def)
			}
		}
	})
}

// denyWithoutTLS reports whether s denies every principal actions matching
// action when the request is not over TLS.
func denyWithoutTLS(s map[string]any, action string) bool {
	cond, _ := s["Condition"].(map[string]any)
	b, _ := cond["Bool"].(map[string]any)
	return s["Effect"] == "Deny" && everyone(s) && b["aws:SecureTransport"] == "false" && slices.Contains(list(s["Action"]), any(action))
}

// everyone reports whether a statement's principal is every principal.
func everyone(s map[string]any) bool {
	p := flat(s["Principal"])
	return p == "*" || p == `{"AWS":"*"}`
}

func TestTransport(t *testing.T) {
	for _, tc := range []struct{ typ, target, action string }{
		{"AWS::S3::BucketPolicy", "Bucket", "s3:*"},
		{"AWS::SNS::TopicPolicy", "Topics", "sns:Publish"},
		{"AWS::SQS::QueuePolicy", "Queues", "sqs:*"},
	} {
		t.Run(tc.typ+" denies requests without TLS", func(t *testing.T) {
			all := resources(shared.hub, tc.typ)
			if len(all) == 0 {
				t.Fatalf("no %s", tc.typ)
			}
			for id, r := range all {
				found := false
				for _, s := range statements(props(r)["PolicyDocument"]) {
					found = found || denyWithoutTLS(s, tc.action)
				}
				if !found {
					t.Errorf("%s %s has no Deny of %s without aws:SecureTransport", tc.typ, id, tc.action)
				}
			}
		})
	}

	t.Run("the bucket's TLS deny covers the bucket and its objects", func(t *testing.T) {
		for _, r := range resources(shared.hub, "AWS::S3::BucketPolicy") {
			for _, s := range statements(props(r)["PolicyDocument"]) {
				if !denyWithoutTLS(s, "s3:*") {
					continue
				}
				var res []string
				for _, x := range list(s["Resource"]) {
					res = append(res, flat(x))
				}
				slices.Sort(res)
				want := []string{"${ReportBucket.Arn}", "${ReportBucket.Arn}/*"}
				if !slices.Equal(res, want) {
					t.Errorf("TLS deny resources = %v, want %v", res, want)
				}
			}
		}
	})
}

func TestNoPublicAccess(t *testing.T) {
	t.Run("every bucket blocks public access", func(t *testing.T) {
		want := map[string]any{"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true}
		for id, r := range resources(shared.hub, "AWS::S3::Bucket") {
			if got := props(r)["PublicAccessBlockConfiguration"]; !reflect.DeepEqual(got, want) {
				t.Errorf("bucket %s PublicAccessBlockConfiguration = %v, want %v", id, got, want)
			}
		}
	})

	t.Run("no resource policy allows everyone", func(t *testing.T) {
		for name, tmpl := range map[string]map[string]any{"hub": shared.hub, "spoke": shared.spoke, "spoke-events": shared.spokeEvents} {
			for id, r := range resources(tmpl, "") {
				for _, docKey := range []string{"PolicyDocument", "KeyPolicy", "AssumeRolePolicyDocument"} {
					doc, ok := props(r)[docKey].(map[string]any)
					if !ok || r["Type"] == "AWS::IAM::Policy" {
						continue
					}
					for _, s := range statements(doc) {
						if s["Effect"] == "Allow" && everyone(s) {
							t.Errorf("%s %s (%s) allows every principal: %v", name, id, r["Type"], s)
						}
					}
				}
			}
		}
	})

	t.Run("the approval API is the one public endpoint, throttled, with its protections written down", func(t *testing.T) {
		apis := resources(shared.hub, "AWS::ApiGateway::RestApi")
		if len(apis) != 1 {
			t.Fatalf("%d REST APIs, want the approval API alone", len(apis))
		}
		var apiID string
		for id := range apis {
			apiID = id
		}
		open := 0
		for id, r := range resources(shared.hub, "AWS::ApiGateway::Method") {
			m := props(r)
			if m["AuthorizationType"] != "NONE" {
				continue
			}
			open++
			if flat(m["RestApiId"]) != "${"+apiID+"}" || !slices.Contains([]any{"GET", "POST"}, m["HttpMethod"]) {
				t.Errorf("unauthenticated method %s outside the approval links: %v", id, m)
			}
		}
		if open != 2 {
			t.Errorf("%d unauthenticated methods, want GET and POST of the approval links", open)
		}
		throttled := false
		for _, r := range resources(shared.hub, "AWS::ApiGateway::Stage") {
			for _, ms := range list(props(r)["MethodSettings"]) {
				if s, ok := ms.(map[string]any); ok && s["ThrottlingRateLimit"] != nil && s["ThrottlingBurstLimit"] != nil {
					throttled = true
				}
			}
		}
		if !throttled {
			t.Error("the approval API's stage has no throttling")
		}
		reasons := nagReasons(t, "AwsSolutions-APIG4")
		if !strings.Contains(reasons, "sign") || !strings.Contains(reasons, "expir") || !strings.Contains(reasons, "single-use") {
			t.Errorf("the approval API's missing authorizer is not explained by the link's signature, expiry and single use: %q", reasons)
		}
	})
}

// nagReasons joins the reasons of every cdk-nag suppression of rule in the
// hub template's metadata.
func nagReasons(t *testing.T, rule string) string {
	t.Helper()
	var out []string
	for _, r := range resources(shared.hub, "") {
		meta, _ := r["Metadata"].(map[string]any)
		nag, _ := meta["cdk_nag"].(map[string]any)
		for _, s := range list(nag["rules_to_suppress"]) {
			if m, ok := s.(map[string]any); ok && m["id"] == rule {
				out = append(out, fmt.Sprint(m["reason"]))
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no suppression of %s", rule)
	}
	return strings.Join(out, " | ")
}
