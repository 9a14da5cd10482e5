package emulator

import (
	"encoding/json"
	"testing"
)

func TestDropGetAttsOfSkipped(t *testing.T) {
	in := `{"Resources": {
	  "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {}},
	  "Dashboard": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {"DashboardBody": {"Fn::Join": ["", [{"Fn::GetAtt": ["Alarm", "Arn"]}]]}}},
	  "Reader": {"Type": "AWS::SSM::Parameter", "Properties": {"Value": {"Ref": "Dashboard"}}, "DependsOn": ["Dashboard", "Table"]},
	  "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}}},
	 "Outputs": {"A": {"Value": {"Fn::GetAtt": ["Alarm", "Arn"]}}, "T": {"Value": {"Ref": "Table"}}}}`
	out, err := dropGetAttsOfSkipped([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var tpl struct {
		Resources map[string]struct{ DependsOn []string }
		Outputs   map[string]any
	}
	if err := json.Unmarshal(out, &tpl); err != nil {
		t.Fatal(err)
	}
	if _, ok := tpl.Resources["Dashboard"]; ok {
		t.Error("the dashboard reading an alarm's ARN is still there")
	}
	for _, keep := range []string{"Alarm", "Reader", "Table"} {
		if _, ok := tpl.Resources[keep]; !ok {
			t.Errorf("%s was removed", keep)
		}
	}
	if deps := tpl.Resources["Reader"].DependsOn; len(deps) != 1 || deps[0] != "Table" {
		t.Errorf("Reader depends on %v, want [Table]", deps)
	}
	if _, ok := tpl.Outputs["A"]; ok || tpl.Outputs["T"] == nil {
		t.Errorf("outputs %v: want A dropped and T kept", tpl.Outputs)
	}
}
