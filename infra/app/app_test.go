package app

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/ec2patch/ec2patch/internal/config"
	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/params"
)

// synthesized is this binary's one synthesis of the dev app, shared by every
// test.
type synthesized struct {
	params                                 config.Params
	opts                                   Options
	outDir                                 string
	hubStack, spokeStack, spokeEventsStack awscdk.Stack
	hub, spoke, spokeEvents                map[string]any
}

var shared *synthesized

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "ec2patch-app-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() {
			if err := os.RemoveAll(dir); err != nil {
				fmt.Fprintln(os.Stderr, "removing the synthesized app:", err)
			}
		}()
		shared, err = synthDev(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "synthesizing the dev app:", err)
			return 1
		}
		return m.Run()
	}()
	jsii.Close()
	os.Exit(code)
}

// fakeCode writes a placeholder bootstrap for every handler.
func fakeCode(dir string) error {
	for _, fn := range contract.Functions() {
		if err := os.MkdirAll(filepath.Join(dir, fn.Dir), 0o750); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fn.Dir, "bootstrap"), []byte(fn.Dir), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func synthDev(dir string) (s *synthesized, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	p, err := LoadParams(params.Files, "dev")
	if err != nil {
		return nil, err
	}
	code := filepath.Join(dir, "lambdas")
	if err := fakeCode(code); err != nil {
		return nil, err
	}
	s = &synthesized{params: p, outDir: filepath.Join(dir, "cdk.out"),
		opts: Options{Params: p, Env: "dev", LambdaCodeDir: code}}
	a := build(s.opts, s.outDir)
	s.hubStack = awscdk.Stack_Of(a.Node().FindChild(jsii.String(contract.HubStackName(p.Hub.NamePrefix))))
	s.spokeStack = awscdk.Stack_Of(a.Node().FindChild(jsii.String(contract.SpokeStackName(p.Hub.NamePrefix))))
	s.spokeEventsStack = awscdk.Stack_Of(a.Node().FindChild(jsii.String(contract.SpokeEventsStackName(p.Hub.NamePrefix))))
	s.hub = templateJSON(s.hubStack)
	s.spoke = templateJSON(s.spokeStack)
	s.spokeEvents = templateJSON(s.spokeEventsStack)
	return s, nil
}

func templateJSON(stack awscdk.Stack) map[string]any {
	data, _ := json.Marshal(assertions.Template_FromStack(stack, nil).ToJSON())
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return m
}

func resources(tmpl map[string]any, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range tmpl["Resources"].(map[string]any) {
		if res := r.(map[string]any); typ == "" || res["Type"] == typ {
			out[id] = res
		}
	}
	return out
}

func props(r map[string]any) map[string]any { return r["Properties"].(map[string]any) }

// flat renders a CloudFormation value with intrinsic functions as text:
// Fn::Join is joined, Ref becomes ${Name}, GetAtt ${Name.Attr}.
func flat(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case map[string]any:
		if j, ok := t["Fn::Join"].([]any); ok {
			var b strings.Builder
			for _, p := range j[1].([]any) {
				b.WriteString(flat(p))
			}
			return b.String()
		}
		if r, ok := t["Ref"]; ok {
			return fmt.Sprintf("${%v}", r)
		}
		if g, ok := t["Fn::GetAtt"].([]any); ok {
			return fmt.Sprintf("${%v.%v}", g[0], g[1])
		}
	}
	data, _ := json.Marshal(v)
	return string(data)
}

func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func statements(doc any) []map[string]any {
	var out []map[string]any
	for _, s := range list(doc.(map[string]any)["Statement"]) {
		out = append(out, s.(map[string]any))
	}
	return out
}

func spokeRole(t *testing.T) map[string]any {
	t.Helper()
	roles := resources(shared.spoke, "AWS::IAM::Role")
	if len(roles) != 1 {
		t.Fatalf("spoke has %d roles, want 1", len(roles))
	}
	for _, r := range roles {
		return props(r)
	}
	return nil
}

func TestSpokeStack(t *testing.T) {
	p := shared.params
	t.Run("spoke role trusts only the hub task role with the ExternalId", func(t *testing.T) {
		role := spokeRole(t)
		if role["RoleName"] != p.Spoke.RoleName {
			t.Errorf("RoleName = %v, want %s", role["RoleName"], p.Spoke.RoleName)
		}
		trust := statements(role["AssumeRolePolicyDocument"])
		if len(trust) != 1 {
			t.Fatalf("trust has %d statements, want 1", len(trust))
		}
		s := trust[0]
		if s["Effect"] != "Allow" || s["Action"] != "sts:AssumeRole" {
			t.Errorf("trust statement = %v", s)
		}
		principal := s["Principal"].(map[string]any)
		if len(principal) != 1 || flat(principal["AWS"]) != "arn:${AWS::Partition}:iam::"+p.Spoke.HubAccountID+":root" {
			t.Errorf("principal = %v, want the hub account", principal)
		}
		cond := s["Condition"].(map[string]any)
		want := map[string]string{
			"StringEquals/sts:ExternalId": p.Spoke.ExternalID,
			"ArnEquals/aws:PrincipalArn":  contract.HubTaskRoleARN("${AWS::Partition}", p.Spoke.HubAccountID, p.Hub.NamePrefix),
		}
		got := map[string]string{}
		for op, kv := range cond {
			for k, v := range kv.(map[string]any) {
				got[op+"/"+k] = flat(v)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("conditions = %v, want %v", got, want)
		}
		if role["MaxSessionDuration"] != float64(3600) {
			t.Errorf("MaxSessionDuration = %v, want 3600", role["MaxSessionDuration"])
		}
	})

	t.Run("spoke SendCommand is limited to AWS-RunPatchBaseline and instances", func(t *testing.T) {
		role := spokeRole(t)
		var sendResources []string
		for _, pol := range list(role["Policies"]) {
			for _, s := range statements(pol.(map[string]any)["PolicyDocument"]) {
				actions := list(s["Action"])
				if slices.Contains(actions, any("ssm:SendCommand")) || slices.Contains(actions, any("ssm:*")) {
					if len(actions) != 1 {
						t.Errorf("SendCommand shares a statement with %v", actions)
					}
					for _, r := range list(s["Resource"]) {
						sendResources = append(sendResources, flat(r))
					}
				}
				if slices.Contains(list(s["Resource"]), any("*")) && slices.ContainsFunc(actions, func(a any) bool {
					return strings.Contains(a.(string), "*") || a == "ssm:SendCommand"
				}) {
					t.Errorf("resource * with %v", actions)
				}
			}
		}
		slices.Sort(sendResources)
		want := []string{
			"arn:${AWS::Partition}:ec2:*:${AWS::AccountId}:instance/*",
			"arn:${AWS::Partition}:ssm:*::document/" + contract.PatchDocument,
		}
		if !slices.Equal(sendResources, want) {
			t.Errorf("SendCommand resources = %v, want %v", sendResources, want)
		}
		if len(resources(shared.spoke, "AWS::IAM::Policy")) != 0 {
			t.Error("spoke has policies outside the role")
		}
	})

	t.Run("spoke template has no assets and no bootstrap rule", func(t *testing.T) {
		for _, section := range []string{"Parameters", "Rules", "Conditions"} {
			if v, ok := shared.spoke[section]; ok {
				t.Errorf("spoke template has %s: %v", section, v)
			}
		}
		name := contract.SpokeStackName(shared.params.Hub.NamePrefix)
		if _, err := os.Stat(filepath.Join(shared.outDir, name+".assets.json")); err == nil {
			t.Errorf("spoke has an asset manifest")
		}
		if got := resources(shared.spoke, ""); len(got) != 1 {
			t.Errorf("spoke has %d resources, want the role alone", len(got))
		}
	})
}

func TestHubStack(t *testing.T) {
	p := shared.params
	hub := assertions.Template_FromStack(shared.hubStack, nil)
	match := func(t *testing.T, typ string, want map[string]any) {
		t.Helper()
		defer func() {
			if r := recover(); r != nil {
				t.Error(r)
			}
		}()
		hub.HasResourceProperties(jsii.String(typ), want)
	}
	keyRef := map[string]any{"Fn::GetAtt": []any{keyID(t), "Arn"}}

	t.Run("table has PITR, TTL and the KMS key", func(t *testing.T) {
		match(t, "AWS::DynamoDB::Table", map[string]any{
			"KeySchema": []any{
				map[string]any{"AttributeName": contract.AttrPK, "KeyType": "HASH"},
				map[string]any{"AttributeName": contract.AttrSK, "KeyType": "RANGE"},
			},
			"BillingMode":                      "PAY_PER_REQUEST",
			"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
			"TimeToLiveSpecification":          map[string]any{"AttributeName": contract.AttrTTL, "Enabled": true},
			"SSESpecification":                 map[string]any{"KMSMasterKeyId": keyRef, "SSEEnabled": true, "SSEType": "KMS"},
		})
	})

	t.Run("table and bucket logical IDs are pinned", func(t *testing.T) {
		all := resources(shared.hub, "")
		for id, typ := range map[string]string{"StateTable": "AWS::DynamoDB::Table", "ReportBucket": "AWS::S3::Bucket"} {
			r, ok := all[id]
			if !ok || r["Type"] != typ {
				t.Errorf("no %s with logical ID %s", typ, id)
				continue
			}
			if r["DeletionPolicy"] != "Retain" || r["UpdateReplacePolicy"] != "Retain" {
				t.Errorf("%s is not retained", id)
			}
		}
	})

	t.Run("topic and bucket deny non-TLS", func(t *testing.T) {
		for typ, docKey := range map[string]string{"AWS::S3::BucketPolicy": "PolicyDocument", "AWS::SNS::TopicPolicy": "PolicyDocument"} {
			found := false
			for _, r := range resources(shared.hub, typ) {
				for _, s := range statements(props(r)[docKey]) {
					c, _ := s["Condition"].(map[string]any)
					b, _ := c["Bool"].(map[string]any)
					if s["Effect"] == "Deny" && b["aws:SecureTransport"] == "false" {
						found = true
					}
				}
			}
			if !found {
				t.Errorf("no %s statement denies requests without TLS", typ)
			}
		}
		match(t, "AWS::SNS::Topic", map[string]any{"KmsMasterKeyId": keyRef})
	})

	t.Run("bucket blocks public access and is versioned", func(t *testing.T) {
		match(t, "AWS::S3::Bucket", map[string]any{
			"PublicAccessBlockConfiguration": map[string]any{
				"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true,
			},
			"VersioningConfiguration": map[string]any{"Status": "Enabled"},
			"BucketEncryption": map[string]any{"ServerSideEncryptionConfiguration": []any{map[string]any{
				"ServerSideEncryptionByDefault": map[string]any{"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": keyRef},
			}}},
		})
	})

	t.Run("bucket lifecycle expires manifests, output and reports", func(t *testing.T) {
		rules := props(resources(shared.hub, "")["ReportBucket"])["LifecycleConfiguration"].(map[string]any)["Rules"].([]any)
		got := map[string]any{}
		for _, r := range rules {
			rule := r.(map[string]any)
			if prefix, ok := rule["Prefix"].(string); ok {
				got[prefix] = rule["ExpirationInDays"]
			} else {
				got["noncurrent"] = rule["NoncurrentVersionExpiration"].(map[string]any)["NoncurrentDays"]
			}
		}
		want := map[string]any{"runs/": 90.0, "ssm-output/": 90.0, "reports/": float64(p.Hub.ReportRetentionDays), "noncurrent": 30.0}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("lifecycle = %v, want %v", got, want)
		}
	})

	t.Run("KMS key rotates", func(t *testing.T) {
		match(t, "AWS::KMS::Key", map[string]any{"EnableKeyRotation": true})
	})

	t.Run("every function's environment is encrypted with the key, which its role may decrypt", func(t *testing.T) {
		key := "${" + keyID(t) + ".Arn}"
		for _, fn := range contract.Functions() {
			if _, pr := function(t, fn); flat(pr["KmsKeyArn"]) != key {
				t.Errorf("%s KmsKeyArn = %v, want the key", fn.Name, pr["KmsKeyArn"])
			}
			decrypts := slices.ContainsFunc(roleStatements(t, fn), func(s map[string]any) bool {
				return s["Effect"] == "Allow" && slices.Contains(list(s["Action"]), any("kms:Decrypt")) &&
					slices.ContainsFunc(list(s["Resource"]), func(r any) bool { return flat(r) == key })
			})
			if !decrypts {
				t.Errorf("%s's role may not decrypt with the key", fn.Name)
			}
		}
	})

	t.Run("every log group has the configured retention", func(t *testing.T) {
		groups := resources(shared.hub, "AWS::Logs::LogGroup")
		if len(groups) != len(contract.Functions())+2 {
			t.Errorf("%d log groups, want one per function, one for the state machine and one for the approval API", len(groups))
		}
		for id, g := range groups {
			if props(g)["RetentionInDays"] != float64(p.Hub.LogRetentionDays) {
				t.Errorf("%s retention = %v, want %d", id, props(g)["RetentionInDays"], p.Hub.LogRetentionDays)
			}
			if flat(props(g)["KmsKeyId"]) != "${"+keyID(t)+".Arn}" {
				t.Errorf("%s is not encrypted with the key", id)
			}
		}
		for id, fn := range resources(shared.hub, "AWS::Lambda::Function") {
			lc, _ := props(fn)["LoggingConfig"].(map[string]any)
			ref, _ := lc["LogGroup"].(map[string]any)["Ref"].(string)
			if _, ok := groups[ref]; !ok {
				t.Errorf("function %s logs to %v, not to one of the stack's log groups", id, lc)
			}
		}
	})

	t.Run("functions are arm64 provided.al2023 with their contract environment", func(t *testing.T) {
		fns := resources(shared.hub, "AWS::Lambda::Function")
		if len(fns) != len(contract.Functions()) {
			t.Fatalf("%d functions, want %d", len(fns), len(contract.Functions()))
		}
		dirs := map[string]bool{}
		for id, fn := range fns {
			pr := props(fn)
			if pr["Runtime"] != "provided.al2023" || pr["Handler"] != "bootstrap" || pr["MemorySize"] != 256.0 ||
				!reflect.DeepEqual(pr["Architectures"], []any{"arm64"}) {
				t.Errorf("%s: runtime %v handler %v memory %v arch %v", id, pr["Runtime"], pr["Handler"], pr["MemorySize"], pr["Architectures"])
			}
			vars := pr["Environment"].(map[string]any)["Variables"].(map[string]any)
			dir, _ := vars[contract.EnvHandler].(string)
			dirs[dir] = true
			for _, fnc := range contract.Functions() {
				if fnc.Dir == dir && pr["Timeout"] != fnc.Timeout.Seconds() {
					t.Errorf("%s timeout %v, want %v", fnc.Name, pr["Timeout"], fnc.Timeout.Seconds())
				}
			}
			for _, spoke := range contract.SpokeFunctions() {
				if spoke.Dir == dir && (vars[contract.EnvExternalID] != p.Hub.CrossAccountExternalID || vars[contract.EnvSpokeRoleName] != p.Spoke.RoleName) {
					t.Errorf("%s lacks the spoke role name or ExternalId: %v", spoke.Name, vars)
				}
			}
			if dir == contract.PrepareRun.Dir {
				var d contract.RunDefaults
				if err := contract.DecodeStrict([]byte(vars[contract.EnvRunDefaults].(string)), &d); err != nil || contract.ValidateDefaults(d) != nil {
					t.Errorf("%s = %v: %v", contract.EnvRunDefaults, vars[contract.EnvRunDefaults], err)
				}
				var waves []contract.WaveInput
				if err := json.Unmarshal([]byte(vars[contract.EnvPlanWaves].(string)), &waves); err != nil || len(waves) != len(p.Waves) {
					t.Errorf("%s = %v: %v", contract.EnvPlanWaves, vars[contract.EnvPlanWaves], err)
				}
			}
		}
		for _, fn := range contract.Functions() {
			if !dirs[fn.Dir] {
				t.Errorf("no function with %s=%s", contract.EnvHandler, fn.Dir)
			}
		}
	})

	t.Run("task role may assume only the plan's spoke roles", func(t *testing.T) {
		var assumable []string
		for _, pol := range resources(shared.hub, "AWS::IAM::Policy") {
			for _, s := range statements(props(pol)["PolicyDocument"]) {
				if slices.Contains(list(s["Action"]), any("sts:AssumeRole")) {
					for _, r := range list(s["Resource"]) {
						assumable = append(assumable, flat(r))
					}
				}
			}
		}
		var want []string
		for _, a := range p.SpokeAccounts() {
			want = append(want, contract.SpokeRoleARN("${AWS::Partition}", a, p.Spoke.RoleName))
		}
		slices.Sort(assumable)
		if !slices.Equal(assumable, want) {
			t.Errorf("sts:AssumeRole on %v, want %v", assumable, want)
		}
		match(t, "AWS::IAM::Role", map[string]any{"RoleName": contract.HubTaskRoleName(p.Hub.NamePrefix)})
	})

	t.Run("outputs use the contract's keys", func(t *testing.T) {
		outputs := shared.hub["Outputs"].(map[string]any)
		want := []string{contract.OutputOrchestratorARN, contract.OutputTableName, contract.OutputBucketName,
			contract.OutputTopicARN, contract.OutputTaskRoleARN, contract.OutputApprovalURL, contract.OutputEventBusARN}
		for _, k := range want {
			if _, ok := outputs[k]; !ok {
				t.Errorf("no output %s", k)
			}
		}
		if len(outputs) != len(want) {
			t.Errorf("outputs %v, want exactly %v", outputs, want)
		}
	})

	t.Run("no custom resources and no TableV2", func(t *testing.T) {
		for _, tmpl := range []map[string]any{shared.hub, shared.spoke, shared.spokeEvents} {
			for id, r := range resources(tmpl, "") {
				typ := r["Type"].(string)
				if strings.HasPrefix(typ, "Custom::") || typ == "AWS::CloudFormation::CustomResource" || typ == "AWS::DynamoDB::GlobalTable" {
					t.Errorf("%s is a %s", id, typ)
				}
			}
			if _, ok := tmpl["Conditions"]; ok {
				t.Error("template has Conditions")
			}
		}
	})
}

// function finds a handler's logical ID and properties by its EnvHandler.
func function(t *testing.T, fn contract.Function) (string, map[string]any) {
	t.Helper()
	for id, r := range resources(shared.hub, "AWS::Lambda::Function") {
		vars := props(r)["Environment"].(map[string]any)["Variables"].(map[string]any)
		if vars[contract.EnvHandler] == fn.Dir {
			return id, props(r)
		}
	}
	t.Fatalf("no function %s", fn.Name)
	return "", nil
}

// envOf is a handler's environment.
func envOf(t *testing.T, fn contract.Function) map[string]any {
	t.Helper()
	_, pr := function(t, fn)
	return pr["Environment"].(map[string]any)["Variables"].(map[string]any)
}

// roleStatements are the statements of every policy attached to a
// handler's role.
func roleStatements(t *testing.T, fn contract.Function) []map[string]any {
	t.Helper()
	_, pr := function(t, fn)
	role := pr["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0]
	var out []map[string]any
	for _, pol := range resources(shared.hub, "AWS::IAM::Policy") {
		for _, r := range list(props(pol)["Roles"]) {
			if r.(map[string]any)["Ref"] == role {
				out = append(out, statements(props(pol)["PolicyDocument"])...)
			}
		}
	}
	if role, ok := resources(shared.hub, "")[role.(string)]; ok {
		for _, pol := range list(props(role)["Policies"]) {
			if pol != nil {
				out = append(out, statements(pol.(map[string]any)["PolicyDocument"])...)
			}
		}
	}
	return out
}

func resourceID(t *testing.T, typ string) string {
	t.Helper()
	ids := resources(shared.hub, typ)
	if len(ids) != 1 {
		t.Fatalf("%d %s resources, want 1", len(ids), typ)
	}
	for id := range ids {
		return id
	}
	return ""
}

func TestApprovalGate(t *testing.T) {
	t.Run("approval API has GET and POST on /approvals/{approvalId} and logs access", func(t *testing.T) {
		api := resourceID(t, "AWS::ApiGateway::RestApi")
		callback, _ := function(t, contract.ApprovalCallback)
		var approvals, approval string
		for id, r := range resources(shared.hub, "AWS::ApiGateway::Resource") {
			switch pr := props(r); pr["PathPart"] {
			case "approvals":
				approvals = id
				if flat(pr["ParentId"]) != "${"+api+".RootResourceId}" {
					t.Errorf("/approvals is under %v", pr["ParentId"])
				}
			case "{approvalId}":
				approval = id
				if flat(pr["ParentId"]) != "${"+approvals+"}" && approvals != "" {
					t.Errorf("{approvalId} is under %v", pr["ParentId"])
				}
			default:
				t.Errorf("unexpected API resource %s %v", id, pr["PathPart"])
			}
		}
		if approvals == "" || approval == "" {
			t.Fatal("no /approvals/{approvalId} resource")
		}
		var verbs []string
		for id, m := range resources(shared.hub, "AWS::ApiGateway::Method") {
			pr := props(m)
			verbs = append(verbs, pr["HttpMethod"].(string))
			integ := pr["Integration"].(map[string]any)
			if flat(pr["ResourceId"]) != "${"+approval+"}" || integ["Type"] != "AWS_PROXY" ||
				!strings.Contains(flat(integ["Uri"]), "${"+callback+".Arn}") {
				t.Errorf("%s is not a proxy to ApprovalCallback on /approvals/{approvalId}: %v", id, pr)
			}
			if pr["ApiKeyRequired"] == true || pr["RequestValidatorId"] == nil {
				t.Errorf("%s: api key %v, validator %v", id, pr["ApiKeyRequired"], pr["RequestValidatorId"])
			}
		}
		slices.Sort(verbs)
		if !slices.Equal(verbs, []string{"GET", "POST"}) {
			t.Errorf("methods = %v, want GET and POST", verbs)
		}
		stage := props(resources(shared.hub, "AWS::ApiGateway::Stage")[resourceID(t, "AWS::ApiGateway::Stage")])
		logs := stage["AccessLogSetting"].(map[string]any)
		group, _ := logs["DestinationArn"].(map[string]any)["Fn::GetAtt"].([]any)
		if stage["StageName"] != "prod" || len(group) == 0 || resources(shared.hub, "AWS::Logs::LogGroup")[group[0].(string)] == nil {
			t.Errorf("stage %v logs access to %v, want stage prod logging to one of the stack's log groups", stage["StageName"], logs)
		}
		for _, f := range []string{"$context.identity.sourceIp", "$context.httpMethod", "$context.status"} {
			if !strings.Contains(fmt.Sprint(logs["Format"]), f) {
				t.Errorf("access log format lacks %s", f)
			}
		}
		settings := list(stage["MethodSettings"])[0].(map[string]any)
		if settings["ThrottlingRateLimit"] != 10.0 || settings["ThrottlingBurstLimit"] != 20.0 {
			t.Errorf("throttling = %v", settings)
		}
		url := flat(shared.hub["Outputs"].(map[string]any)[contract.OutputApprovalURL].(map[string]any)["Value"])
		if url != "https://${"+api+"}.execute-api.${AWS::Region}.${AWS::URLSuffix}/prod/approvals" {
			t.Errorf("%s = %s", contract.OutputApprovalURL, url)
		}
		if got := flat(envOf(t, contract.SendApprovalRequest)[contract.EnvApprovalURL]); got != url {
			t.Errorf("SendApprovalRequest %s = %s, want %s", contract.EnvApprovalURL, got, url)
		}
	})

	t.Run("signing secret is KMS-encrypted", func(t *testing.T) {
		id := resourceID(t, "AWS::SecretsManager::Secret")
		pr := props(resources(shared.hub, "")[id])
		if flat(pr["KmsKeyId"]) != "${"+keyID(t)+".Arn}" {
			t.Errorf("KmsKeyId = %v, want the hub key", pr["KmsKeyId"])
		}
		gen, _ := pr["GenerateSecretString"].(map[string]any)
		if gen["PasswordLength"] != 64.0 || gen["ExcludePunctuation"] != true {
			t.Errorf("GenerateSecretString = %v, want 64 characters without punctuation", gen)
		}
		if _, ok := pr["SecretString"]; ok {
			t.Error("the secret's value is in the template")
		}
		for _, fn := range []contract.Function{contract.SendApprovalRequest, contract.ApprovalCallback} {
			if got := flat(envOf(t, fn)[contract.EnvSigningSecret]); got != "${"+id+"}" {
				t.Errorf("%s %s = %s, want the secret's ARN", fn.Name, contract.EnvSigningSecret, got)
			}
		}
	})

	t.Run("ApprovalCallback may answer only the orchestrator's task tokens", func(t *testing.T) {
		sm := resourceID(t, "AWS::StepFunctions::StateMachine")
		answering := slices.DeleteFunc(taskAnswering(t), func(a string) bool { return !strings.HasPrefix(a, "ApprovalCallback ") })
		want := []string{
			"ApprovalCallback states:SendTaskFailure on ${" + sm + "}",
			"ApprovalCallback states:SendTaskSuccess on ${" + sm + "}",
		}
		if !slices.Equal(answering, want) {
			t.Errorf("task token permissions = %v, want %v", answering, want)
		}
	})

	t.Run("CheckHaltAlarms can only describe alarms and decrypt its environment", func(t *testing.T) {
		stmts := roleStatements(t, contract.CheckHaltAlarms)
		if len(stmts) != 2 {
			t.Fatalf("CheckHaltAlarms has %d statements, want 2: %v", len(stmts), stmts)
		}
		s := stmts[0]
		if !reflect.DeepEqual(list(s["Action"]), []any{"cloudwatch:DescribeAlarms"}) || s["Effect"] != "Allow" ||
			flat(s["Resource"]) != "*" { // composite alarms are returned only to "*"
			t.Errorf("statement = %v", s)
		}
		s = stmts[1]
		if !reflect.DeepEqual(list(s["Action"]), []any{"kms:Decrypt"}) || s["Effect"] != "Allow" ||
			flat(s["Resource"]) != "${"+keyID(t)+".Arn}" {
			t.Errorf("statement = %v, want kms:Decrypt on the key (the function's environment)", s)
		}
	})

	t.Run("approval handlers reach the table, topic and secret they use", func(t *testing.T) {
		for fn, want := range map[contract.Function][]string{
			contract.SendApprovalRequest: {contract.EnvTable, contract.EnvTopicARN, contract.EnvApprovalURL, contract.EnvSigningSecret, contract.EnvRecordTTLDays},
			contract.ApprovalCallback:    {contract.EnvTable, contract.EnvSigningSecret, contract.EnvRecordTTLDays},
			contract.PreEC2Inventory:     {contract.EnvTable, contract.EnvRecordTTLDays},
		} {
			env := envOf(t, fn)
			for _, k := range want {
				if env[k] == nil {
					t.Errorf("%s lacks %s", fn.Name, k)
				}
			}
			var actions []string
			for _, s := range roleStatements(t, fn) {
				for _, a := range list(s["Action"]) {
					actions = append(actions, a.(string))
				}
			}
			// The table actions each handler calls (hub/grants.go).
			needs := map[contract.Function][]string{
				contract.SendApprovalRequest: {"dynamodb:PutItem", "dynamodb:Query"},
				contract.ApprovalCallback:    {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:DeleteItem"},
				contract.PreEC2Inventory:     {"dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:BatchWriteItem"},
			}[fn]
			if fn != contract.PreEC2Inventory {
				needs = append(needs, "secretsmanager:GetSecretValue")
			}
			if fn == contract.SendApprovalRequest {
				needs = append(needs, "sns:Publish")
			}
			for _, a := range needs {
				if !slices.Contains(actions, a) {
					t.Errorf("%s may not %s", fn.Name, a)
				}
			}
		}
	})
}

// taskAnswering lists, as "<function> <action> on <resource>", every
// permission to answer a task token that a handler's code may use. A
// statement limited by lambda:SourceFunctionArn counts only for the
// function it names, though its role may be shared.
func taskAnswering(t *testing.T) []string {
	t.Helper()
	var answering []string
	for _, fn := range contract.Functions() {
		id, _ := function(t, fn)
		for _, s := range roleStatements(t, fn) {
			if cond, ok := s["Condition"].(map[string]any); ok {
				if eq, ok := cond["ArnEquals"].(map[string]any); ok && eq["lambda:SourceFunctionArn"] != nil &&
					flat(eq["lambda:SourceFunctionArn"]) != "${"+id+".Arn}" {
					continue
				}
			}
			for _, a := range list(s["Action"]) {
				if strings.HasPrefix(a.(string), "states:SendTask") || a == "states:*" {
					answering = append(answering, fn.Name+" "+a.(string)+" on "+flat(s["Resource"]))
				}
			}
		}
	}
	slices.Sort(answering)
	return answering
}

func keyID(t *testing.T) string {
	t.Helper()
	for id := range resources(shared.hub, "AWS::KMS::Key") {
		return id
	}
	t.Fatal("no KMS key")
	return ""
}

func TestNag(t *testing.T) {
	for name, stack := range map[string]awscdk.Stack{"hub": shared.hubStack, "spoke": shared.spokeStack, "spoke events": shared.spokeEventsStack} {
		t.Run(name+" has no unsuppressed cdk-nag errors or warnings", func(t *testing.T) {
			ann := assertions.Annotations_FromStack(stack)
			rule := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
			for _, m := range *ann.FindError(jsii.String("*"), rule) {
				t.Errorf("error at %s: %v", *m.Id, m.Entry.Data) //nolint:staticcheck // the Go bindings have no other type with the message's construct path
			}
			for _, m := range *ann.FindWarning(jsii.String("*"), rule) {
				t.Errorf("warning at %s: %v", *m.Id, m.Entry.Data) //nolint:staticcheck // the Go bindings have no other type with the message's construct path
			}
		})
	}
	t.Run("every suppression has a reason", func(t *testing.T) {
		for _, tmpl := range []map[string]any{shared.hub, shared.spoke, shared.spokeEvents} {
			for id, r := range resources(tmpl, "") {
				md, _ := r["Metadata"].(map[string]any)
				nag, _ := md["cdk_nag"].(map[string]any)
				for _, s := range list(nag["rules_to_suppress"]) {
					if s == nil {
						continue
					}
					if reason, _ := s.(map[string]any)["reason"].(string); len(reason) < 20 {
						t.Errorf("%s: suppression %v has no written reason", id, s)
					}
				}
			}
		}
	})
}

func TestSynth(t *testing.T) {
	t.Run("emulator templates differ only by the bootstrap version rule", func(t *testing.T) {
		opts := shared.opts
		opts.Emulator = true
		got, err := Synth(opts, filepath.Join(t.TempDir(), "cdk.out"))
		if err != nil {
			t.Fatal(err)
		}
		if got.HubStackName != contract.HubStackName(shared.params.Hub.NamePrefix) || got.SpokeStackName != contract.SpokeStackName(shared.params.Hub.NamePrefix) ||
			got.SpokeEventsStackName != contract.SpokeEventsStackName(shared.params.Hub.NamePrefix) {
			t.Errorf("stack names %s, %s, %s", got.HubStackName, got.SpokeStackName, got.SpokeEventsStackName)
		}
		var spokeEvents map[string]any
		if err := json.Unmarshal(got.SpokeEvents, &spokeEvents); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(spokeEvents, shared.spokeEvents) {
			t.Error("emulator spoke events template differs")
		}
		var hub, spoke map[string]any
		if err := json.Unmarshal(got.Hub, &hub); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got.Spoke, &spoke); err != nil {
			t.Fatal(err)
		}
		if _, ok := hub["Rules"]; ok {
			t.Error("emulator hub template has Rules")
		}
		want := map[string]any{}
		for k, v := range shared.hub {
			if k != "Rules" && k != "Parameters" {
				want[k] = v
			}
		}
		delete(hub, "Parameters")
		if !reflect.DeepEqual(hub, want) {
			t.Error("emulator hub template differs from the deployed one beyond the bootstrap rule")
		}
		if !reflect.DeepEqual(spoke, shared.spoke) {
			t.Error("emulator spoke template differs")
		}
	})

	t.Run("artifact_bucket takes each handler from artifact_key/<dir>.zip", func(t *testing.T) {
		opts := shared.opts
		opts.Params.Hub.ArtifactBucket, opts.Params.Hub.ArtifactKey = "ec2patch-artifacts", "releases/1.0"
		got, err := Synth(opts, filepath.Join(t.TempDir(), "cdk.out"))
		if err != nil {
			t.Fatal(err)
		}
		var hub map[string]any
		if err := json.Unmarshal(got.Hub, &hub); err != nil {
			t.Fatal(err)
		}
		for id, fn := range resources(hub, "AWS::Lambda::Function") {
			code := props(fn)["Code"].(map[string]any)
			dir := props(fn)["Environment"].(map[string]any)["Variables"].(map[string]any)[contract.EnvHandler]
			if code["S3Bucket"] != "ec2patch-artifacts" || code["S3Key"] != fmt.Sprintf("releases/1.0/%s.zip", dir) {
				t.Errorf("%s code = %v", id, code)
			}
		}
	})

	t.Run("invalid params stop synth naming the file and field", func(t *testing.T) {
		data, err := params.Files.ReadFile("dev.json")
		if err != nil {
			t.Fatal(err)
		}
		bad := strings.Replace(string(data), `"log_retention_days": 30`, `"log_retention_days": 31`, 1)
		if bad == string(data) {
			t.Fatal("dev.json has no log_retention_days 30 to break")
		}
		_, err = LoadParams(fstest.MapFS{"dev.json": {Data: []byte(bad)}}, "dev")
		if err == nil || !strings.Contains(err.Error(), "params/dev.json") || !strings.Contains(err.Error(), "hub.log_retention_days") {
			t.Errorf("error = %v, want one naming params/dev.json and hub.log_retention_days", err)
		}
	})

	t.Run("cdk.json carries the app's feature flags", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join("..", "..", "cdk.json"))
		if err != nil {
			t.Fatal(err)
		}
		var cdk struct {
			App     string         `json:"app"`
			Context map[string]any `json:"context"`
		}
		if err := json.Unmarshal(data, &cdk); err != nil {
			t.Fatal(err)
		}
		if cdk.App != "go run ./infra" {
			t.Errorf("app = %q", cdk.App)
		}
		want, _ := json.Marshal(FeatureFlags)
		got, _ := json.Marshal(cdk.Context)
		if string(got) != string(want) {
			t.Errorf("cdk.json context = %s, want app.FeatureFlags %s", got, want)
		}
	})
}
