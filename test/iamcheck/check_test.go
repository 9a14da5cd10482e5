package iamcheck

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ec2patch/ec2patch/test/proxy"
)

const (
	hub      = "123456789012"
	spoke    = "222222222222"
	tableARN = "arn:aws:dynamodb:us-east-1:" + hub + ":table/state"
	fnRole   = "arn:aws:iam::" + hub + ":role/hub-PrepareRunRole9A3F6FBD-x1"
	smRole   = "arn:aws:iam::" + hub + ":role/hub-OrchestratorRole-x2"
	execRole = "arn:aws:iam::" + spoke + ":role/PatchExecRole"
)

func mustParse(t *testing.T, doc string) []Statement {
	t.Helper()
	s, err := ParseDocument("test", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWildcard(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		fold, want bool
	}{
		{"s3:GetObject*", "s3:GetObjectVersion", true, true},
		{"s3:GetObject*", "s3:PutObject", true, false},
		{"dynamodb:*", "DynamoDB:PutItem", true, true},
		{"arn:aws:s3:::b/runs/*", "arn:aws:s3:::b/runs/r1/w1.json", false, true},
		{"arn:aws:s3:::b/runs/*", "arn:aws:s3:::b/reports/r1.json", false, false},
		{"arn:aws:s3:::b/runs/*", "arn:aws:s3:::B/runs/x", false, false},
		{"ssm:List?ommands", "ssm:ListCommands", true, true},
		{"*", "anything:AtAll", true, true},
		{"a*b*c", "aXbYbZc", false, true},
		{"a*b*c", "aXbYbZ", false, false},
	} {
		if got := Wildcard(c.pattern, c.s, c.fold); got != c.want {
			t.Errorf("Wildcard(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

func TestParseDocumentAcceptsSingleStatementsAndStrings(t *testing.T) {
	s := mustParse(t, `{"Statement":{"Effect":"Allow","Action":"sns:Publish","Resource":"*",
		"Condition":{"StringEquals":{"aws:SourceAccount":"1","kms:ViaService":"x"}}}}`)
	if len(s) != 1 || !slices.Equal(s[0].Action, []string{"sns:Publish"}) ||
		!slices.Equal(s[0].Conditions, []string{"StringEquals:aws:SourceAccount", "StringEquals:kms:ViaService"}) {
		t.Errorf("statements = %+v", s)
	}
	if _, err := ParseDocument("bad", []byte(`{"Statement":[{"Action":7}]}`)); err == nil {
		t.Error("a numeric Action parsed")
	}
}

func TestRequests(t *testing.T) {
	for _, c := range []struct {
		name    string
		call    proxy.Call
		want    []Request
		derived bool
	}{
		{"dynamodb item", proxy.Call{Service: "dynamodb", Action: "PutItem", Region: "us-east-1", Account: hub,
			Params: map[string]any{"TableName": "state"}}, []Request{{"dynamodb:PutItem", tableARN}}, true},
		{"dynamodb index", proxy.Call{Service: "dynamodb", Action: "Query", Region: "us-east-1", Account: hub,
			Params: map[string]any{"TableName": "state", "IndexName": "byStatus"}},
			[]Request{{"dynamodb:Query", tableARN + "/index/byStatus"}}, true},
		{"dynamodb transaction needs each item's action", proxy.Call{Service: "dynamodb", Action: "TransactWriteItems",
			Region: "us-east-1", Account: hub, Params: map[string]any{"TransactItems": []any{
				map[string]any{"Put": map[string]any{"TableName": "state"}},
				map[string]any{"ConditionCheck": map[string]any{"TableName": "state"}}}}},
			[]Request{{"dynamodb:PutItem", tableARN}, {"dynamodb:ConditionCheckItem", tableARN}}, true},
		{"s3 object", proxy.Call{Service: "s3", Action: "GetObject", Path: "/bkt/runs/r1/w1.json"},
			[]Request{{"s3:GetObject", "arn:aws:s3:::bkt/runs/r1/w1.json"}}, true},
		{"s3 list is on the bucket", proxy.Call{Service: "s3", Action: "ListObjectsV2", Path: "/bkt/"},
			[]Request{{"s3:ListBucket", "arn:aws:s3:::bkt"}}, true},
		{"lambda invoke", proxy.Call{Service: "lambda", Action: "Invoke", Function: "hub-PrepareRun-1", Region: "us-east-1", Account: hub},
			[]Request{{"lambda:InvokeFunction", "arn:aws:lambda:us-east-1:" + hub + ":function:hub-PrepareRun-1"}}, true},
		{"sns publish", proxy.Call{Service: "sns", Action: "Publish", Form: url.Values{"TopicArn": {"arn:aws:sns:us-east-1:1:t"}}},
			[]Request{{"sns:Publish", "arn:aws:sns:us-east-1:1:t"}}, true},
		{"assume role", proxy.Call{Service: "sts", Action: "AssumeRole", RoleARN: execRole},
			[]Request{{"sts:AssumeRole", execRole}}, true},
		{"send command names the document and every instance", proxy.Call{Service: "ssm", Action: "SendCommand",
			Region: "eu-west-1", Account: spoke, InstanceIDs: []string{"i-1", "i-2"},
			Params: map[string]any{"DocumentName": "AWS-RunPatchBaseline"}},
			[]Request{{"ssm:SendCommand", "arn:aws:ssm:eu-west-1::document/AWS-RunPatchBaseline"},
				{"ssm:SendCommand", "arn:aws:ec2:eu-west-1:" + spoke + ":instance/i-1"},
				{"ssm:SendCommand", "arn:aws:ec2:eu-west-1:" + spoke + ":instance/i-2"}}, true},
		{"cloudwatch is monitoring on the wire", proxy.Call{Service: "monitoring", Action: "DescribeAlarms", Region: "us-east-1",
			Account: hub, Params: map[string]any{"AlarmNames": []any{"halt"}}},
			[]Request{{"cloudwatch:DescribeAlarms", "arn:aws:cloudwatch:us-east-1:" + hub + ":alarm:halt"}}, true},
		{"task tokens name no resource", proxy.Call{Service: "states", Action: "SendTaskSuccess"},
			[]Request{{"states:SendTaskSuccess", ""}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, derived := Requests(c.call)
			if !slices.Equal(got, c.want) || derived != c.derived {
				t.Errorf("Requests = %v (derived %v), want %v (derived %v)", got, derived, c.want, c.derived)
			}
		})
	}
}

// roles is a small hub and spoke: a handler role that may write one table
// and publish, the orchestrator's role that may invoke functions, and a
// spoke role that may send one document to instances.
func roles(t *testing.T) []Role {
	return []Role{
		{ARN: fnRole, Account: hub, Label: "PrepareRunRole", Statements: mustParse(t, `{"Statement":[
			{"Effect":"Allow","Action":["dynamodb:PutItem","dynamodb:GetItem","dynamodb:Scan"],"Resource":"`+tableARN+`"},
			{"Effect":"Allow","Action":"sns:Publish","Resource":"arn:aws:sns:us-east-1:`+hub+`:topic"},
			{"Effect":"Deny","Action":"dynamodb:DeleteItem","Resource":"*"},
			{"Sid":"Resume","Effect":"Allow","Action":"states:SendTaskSuccess","Resource":"*",
			 "Condition":{"ArnEquals":{"lambda:SourceFunctionArn":"x"}}}]}`)},
		{ARN: smRole, Account: hub, Label: "OrchestratorRole", Statements: mustParse(t, `{"Statement":[
			{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:`+hub+`:function:*"}]}`)},
		{ARN: execRole, Account: spoke, Label: "PatchExecRole", Statements: mustParse(t, `{"Statement":[
			{"Effect":"Allow","NotAction":["iam:*","ssm:SendCommand"],"Resource":"*"},
			{"Effect":"Allow","Action":"ssm:SendCommand","Resource":["arn:aws:ssm:*::document/AWS-RunPatchBaseline","arn:aws:ec2:*:`+spoke+`:instance/*"]}]}`)},
	}
}

func TestCheck(t *testing.T) {
	put := proxy.Call{Seq: 1, Service: "dynamodb", Action: "PutItem", Region: "us-east-1", Account: hub,
		Principal: fnRole, Params: map[string]any{"TableName": "state"}}
	otherTable := put
	otherTable.Seq, otherTable.Params = 2, map[string]any{"TableName": "other"}
	del := put
	del.Seq, del.Action = 3, "DeleteItem"
	invoke := proxy.Call{Seq: 4, Service: "lambda", Action: "Invoke", Function: "fn", Region: "us-east-1",
		Account: hub, AccessKey: InterpreterKey}
	send := proxy.Call{Seq: 5, Service: "ssm", Action: "SendCommand", Region: "us-east-1", Account: spoke,
		Principal: "arn:aws:sts::" + spoke + ":assumed-role/PatchExecRole/ec2patch", InstanceIDs: []string{"i-1"},
		Params: map[string]any{"DocumentName": "AWS-RunShellScript"}}
	describe := send
	describe.Seq, describe.Action, describe.Service, describe.Params = 6, "DescribeInstances", "ec2", nil
	harness := proxy.Call{Seq: 7, Service: "sfn", Action: "StartExecution", AccessKey: "HARNESS"}
	event := proxy.Call{Seq: 8, Service: "lambda", Action: "Invoke", Principal: proxy.EventPrincipal}
	stranger := put
	stranger.Seq, stranger.Principal = 9, "arn:aws:iam::"+hub+":role/nobody"
	missing := proxy.Call{Seq: 10, Service: "sts", Action: "AssumeRole", Principal: fnRole, Account: hub,
		Region: "us-east-1", RoleARN: "arn:aws:iam::555555555555:role/PatchExecRole"}

	res := Check([]Run{{Roles: roles(t), InterpreterRole: smRole,
		Calls: []proxy.Call{put, otherTable, del, invoke, send, describe, harness, event, stranger, missing}}})

	var denied []string
	for _, f := range res.Denied {
		denied = append(denied, f.String())
	}
	want := []string{
		"PrepareRunRole may not dynamodb:PutItem on arn:aws:dynamodb:us-east-1:" + hub + ":table/other (call #2 in " + hub + "/us-east-1: the action is granted on other resources only)",
		"PrepareRunRole may not dynamodb:DeleteItem on " + tableARN + " (call #3 in " + hub + "/us-east-1: denied by test)",
		"PatchExecRole may not ssm:SendCommand on arn:aws:ssm:us-east-1::document/AWS-RunShellScript (call #5 in " + spoke + "/us-east-1: the action is granted on other resources only)",
		"arn:aws:iam::" + hub + ":role/nobody may not dynamodb:PutItem on * (call #9 in " + hub + "/us-east-1: no such role in the account)",
		"PrepareRunRole may not sts:AssumeRole on arn:aws:iam::555555555555:role/PatchExecRole (call #10 in " + hub + "/us-east-1: no statement allows the action)",
	}
	if !slices.Equal(denied, want) {
		t.Errorf("denied:\n%s\nwant:\n%s", strings.Join(denied, "\n"), strings.Join(want, "\n"))
	}
	if !res.Denied[4].Refused() || res.Denied[0].Refused() {
		t.Errorf("an assumption of a role that does not exist is not an expected denial, or a table write is")
	}
	if res.Evaluated != 7 || len(res.Skipped) != 2 {
		t.Errorf("evaluated %d, skipped %v; want 7 evaluated, the harness and the event skipped", res.Evaluated, res.Skipped)
	}
	if u := res.Usage["OrchestratorRole"]; u.Used["lambda:InvokeFunction"] != 1 {
		t.Errorf("the interpreter's invoke is not the orchestrator's: %+v", u)
	}
	if u := res.Usage["PatchExecRole"]; u.Used["NotAction:iam:*,ssm:SendCommand"] != 1 {
		t.Errorf("DescribeInstances did not use the NotAction grant: %+v", u)
	}

	rv := res.Review(Reasons{"PrepareRunRole": {
		"dynamodb:Scan":    "kept for an operator query",
		"dynamodb:PutItem": "stale: it is used",
	}})
	wantUnexplained := []string{"PrepareRunRole dynamodb:GetItem", "PrepareRunRole sns:Publish",
		"PrepareRunRole states:SendTaskSuccess"}
	if !slices.Equal(rv.Unexplained, wantUnexplained) {
		t.Errorf("unexplained = %v, want %v", rv.Unexplained, wantUnexplained)
	}
	if !slices.Equal(rv.Stale, []string{"PrepareRunRole dynamodb:PutItem: used"}) {
		t.Errorf("stale = %v", rv.Stale)
	}
	for _, s := range []string{"| PrepareRunRole | 5 | dynamodb:PutItem (1) | dynamodb:GetItem (NO REASON)<br>dynamodb:Scan (kept for an operator query)",
		"| OrchestratorRole | 1 | lambda:InvokeFunction (1) | - |"} {
		if !strings.Contains(rv.Table, s) {
			t.Errorf("table lacks %q:\n%s", s, rv.Table)
		}
	}
	if notes := res.Notes(); !strings.Contains(notes, "PrepareRunRole: Resume(ArnEquals:lambda:SourceFunctionArn)") {
		t.Errorf("notes do not list the unevaluated condition:\n%s", notes)
	}
}

func TestParseEncodedReadsMotosPythonRepr(t *testing.T) {
	s, err := parseEncoded("Patch", `{'Version': '2012-10-17', 'Statement': [{'Sid': 'DescribeFleet', 'Effect': 'Allow', 'Action': ['ec2:DescribeInstances'], 'Resource': '*'}]}`)
	if err != nil || len(s) != 1 || s[0].Sid != "DescribeFleet" || !slices.Equal(s[0].Action, []string{"ec2:DescribeInstances"}) {
		t.Errorf("statements %+v, err %v", s, err)
	}
	s, err = parseEncoded("x", url.QueryEscape(`{"Statement":[{"Effect":"Allow","Action":"sns:Publish","Resource":"*"}]}`))
	if err != nil || len(s) != 1 || s[0].Action[0] != "sns:Publish" {
		t.Errorf("URL-encoded: statements %+v, err %v", s, err)
	}
}

func TestGeneratedNameGivesTheLogicalID(t *testing.T) {
	m := generatedName.FindStringSubmatch("ec2patch-dev-spoke-events-ForwardRoleAD41B8CF-14TGFYQSBYOC")
	if m == nil || m[1] != "ForwardRole" {
		t.Errorf("match = %v, want ForwardRole", m)
	}
}
