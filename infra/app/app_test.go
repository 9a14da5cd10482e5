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
	params     config.Params
	opts       Options
	outDir     string
	hubStack   awscdk.Stack
	spokeStack awscdk.Stack
	hub, spoke map[string]any
}

var shared *synthesized

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "ec2patch-app-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
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
		if err := os.MkdirAll(filepath.Join(dir, fn.Dir), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fn.Dir, "bootstrap"), []byte(fn.Dir), 0o755); err != nil {
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
	s.hub = templateJSON(s.hubStack)
	s.spoke = templateJSON(s.spokeStack)
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

	t.Run("every log group has the configured retention", func(t *testing.T) {
		groups := resources(shared.hub, "AWS::Logs::LogGroup")
		if len(groups) != len(contract.Functions())+1 {
			t.Errorf("%d log groups, want one per function and one for the state machine", len(groups))
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
		for _, k := range []string{contract.OutputOrchestratorARN, contract.OutputTableName, contract.OutputBucketName,
			contract.OutputTopicARN, contract.OutputTaskRoleARN} {
			if _, ok := outputs[k]; !ok {
				t.Errorf("no output %s", k)
			}
		}
	})

	t.Run("no custom resources and no TableV2", func(t *testing.T) {
		for _, tmpl := range []map[string]any{shared.hub, shared.spoke} {
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

func keyID(t *testing.T) string {
	t.Helper()
	for id := range resources(shared.hub, "AWS::KMS::Key") {
		return id
	}
	t.Fatal("no KMS key")
	return ""
}

func TestNag(t *testing.T) {
	for name, stack := range map[string]awscdk.Stack{"hub": shared.hubStack, "spoke": shared.spokeStack} {
		t.Run(name+" has no unsuppressed cdk-nag errors or warnings", func(t *testing.T) {
			ann := assertions.Annotations_FromStack(stack)
			rule := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
			for _, m := range *ann.FindError(jsii.String("*"), rule) {
				t.Errorf("error at %s: %v", *m.Id, m.Entry.Data)
			}
			for _, m := range *ann.FindWarning(jsii.String("*"), rule) {
				t.Errorf("warning at %s: %v", *m.Id, m.Entry.Data)
			}
		})
	}
	t.Run("every suppression has a reason", func(t *testing.T) {
		for _, tmpl := range []map[string]any{shared.hub, shared.spoke} {
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
		if got.HubStackName != contract.HubStackName(shared.params.Hub.NamePrefix) || got.SpokeStackName != contract.SpokeStackName(shared.params.Hub.NamePrefix) {
			t.Errorf("stack names %s, %s", got.HubStackName, got.SpokeStackName)
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
