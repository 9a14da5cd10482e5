package app

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ec2patch/ec2patch/constructs/hub"
	"github.com/ec2patch/ec2patch/internal/contract"
)

// alarmNamed returns the properties of the metric or composite alarm with
// that name (after the hub's prefix).
func alarmNamed(t *testing.T, name string) (string, map[string]any) {
	t.Helper()
	want := shared.params.Hub.NamePrefix + "-" + name
	for _, typ := range []string{"AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"} {
		for _, r := range resources(shared.hub, typ) {
			if p := props(r); p["AlarmName"] == want {
				return typ, p
			}
		}
	}
	t.Fatalf("no alarm %s", want)
	return "", nil
}

func topicID(t *testing.T) string { return resourceID(t, "AWS::SNS::Topic") }

func notifiesTopic(t *testing.T, p map[string]any) {
	t.Helper()
	actions := list(p["AlarmActions"])
	if len(actions) != 1 || flat(actions[0]) != "${"+topicID(t)+"}" {
		t.Errorf("AlarmActions = %v, want the topic only", actions)
	}
}

func TestAlarms(t *testing.T) {
	a := shared.params.Hub.Alarms
	period := float64(a.PeriodMinutes * 60)
	env := shared.params.Hub.NamePrefix
	single := []struct {
		name, metric, stat string
		threshold          int
		period             float64
	}{
		{hub.AlarmPatchFailureRate, contract.MetricPatchFailures, "Sum", a.PatchFailures, period},
		{hub.AlarmInstanceDowntime, contract.MetricInstancesUnhealthy, "Sum", a.InstancesUnhealthy, period},
		{hub.AlarmApprovalTimeout, contract.MetricOldestPendingApprovalMinutes, "Maximum", a.ApprovalAgeMinutes,
			float64(shared.params.Hub.ReconcileIntervalMinutes * 60)},
	}
	for _, c := range single {
		t.Run(c.name+" reads "+c.metric, func(t *testing.T) {
			_, p := alarmNamed(t, c.name)
			if p["Namespace"] != contract.MetricNamespace || p["MetricName"] != c.metric || p["Statistic"] != c.stat {
				t.Errorf("metric %v/%v %v, want %s/%s %s", p["Namespace"], p["MetricName"], p["Statistic"], contract.MetricNamespace, c.metric, c.stat)
			}
			dims := list(p["Dimensions"])
			if len(dims) != 1 || fmt.Sprint(dims[0]) != fmt.Sprint(map[string]any{"Name": contract.DimEnvironment, "Value": env}) {
				t.Errorf("dimensions %v, want Environment=%s only", dims, env)
			}
			if p["Threshold"] != float64(c.threshold) || p["ComparisonOperator"] != "GreaterThanThreshold" ||
				p["Period"] != c.period || p["EvaluationPeriods"] != 1.0 || p["TreatMissingData"] != "notBreaching" {
				t.Errorf("threshold %v %v, period %v, evaluations %v, missing %v", p["ComparisonOperator"], p["Threshold"],
					p["Period"], p["EvaluationPeriods"], p["TreatMissingData"])
			}
			notifiesTopic(t, p)
			if !strings.Contains(fmt.Sprint(p["AlarmDescription"]), "docs/runbook.md") {
				t.Errorf("description %q does not point to the runbook", p["AlarmDescription"])
			}
		})
	}

	t.Run("OrchestratorFailures sums failed, timed out and aborted executions", func(t *testing.T) {
		_, p := alarmNamed(t, hub.AlarmOrchestratorFailures)
		got := map[string]string{}
		for _, q := range list(p["Metrics"]) {
			q := q.(map[string]any)
			if e, ok := q["Expression"]; ok {
				got["expression"] = fmt.Sprint(e)
				continue
			}
			ms := q["MetricStat"].(map[string]any)
			m := ms["Metric"].(map[string]any)
			if m["Namespace"] != "AWS/States" || ms["Stat"] != "Sum" || ms["Period"] != period {
				t.Errorf("metric %v", ms)
			}
			got[fmt.Sprint(m["MetricName"])] = flat(list(m["Dimensions"])[0].(map[string]any)["Value"])
		}
		sm := "${" + resourceID(t, "AWS::StepFunctions::StateMachine") + "}"
		for _, name := range []string{"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"} {
			if got[name] != sm {
				t.Errorf("%s of %q, want the orchestrator %s", name, got[name], sm)
			}
		}
		if got["expression"] != "FILL(failed, 0) + FILL(timedOut, 0) + FILL(aborted, 0)" {
			t.Errorf("expression %q", got["expression"])
		}
		if p["Threshold"] != 0.0 || p["ComparisonOperator"] != "GreaterThanThreshold" || p["TreatMissingData"] != "notBreaching" {
			t.Errorf("threshold %v %v", p["ComparisonOperator"], p["Threshold"])
		}
		notifiesTopic(t, p)
	})

	t.Run("LambdaErrors covers the Errors of every function", func(t *testing.T) {
		typ, p := alarmNamed(t, hub.AlarmLambdaErrors)
		notifiesTopic(t, p)
		parts := []map[string]any{p}
		if typ == "AWS::CloudWatch::CompositeAlarm" {
			parts = nil
			for id, r := range resources(shared.hub, "AWS::CloudWatch::Alarm") {
				part := props(r)
				if !strings.HasPrefix(fmt.Sprint(part["AlarmName"]), env+"-"+hub.AlarmLambdaErrors+"-") {
					continue
				}
				if !strings.Contains(flat(p["AlarmRule"]), "${"+id+".Arn}") {
					t.Errorf("the composite's rule %s does not read %s", flat(p["AlarmRule"]), part["AlarmName"])
				}
				if part["AlarmActions"] != nil {
					t.Errorf("part %s notifies on its own", part["AlarmName"])
				}
				parts = append(parts, part)
			}
		}
		fns := map[string]bool{}
		for _, part := range parts {
			if part["Threshold"] != 0.0 || part["ComparisonOperator"] != "GreaterThanThreshold" || part["TreatMissingData"] != "notBreaching" {
				t.Errorf("threshold %v %v", part["ComparisonOperator"], part["Threshold"])
			}
			n := 0
			for _, q := range list(part["Metrics"]) {
				ms, ok := q.(map[string]any)["MetricStat"].(map[string]any)
				if !ok {
					continue
				}
				n++
				m := ms["Metric"].(map[string]any)
				if m["Namespace"] != "AWS/Lambda" || m["MetricName"] != "Errors" || ms["Stat"] != "Sum" {
					t.Errorf("metric %v", ms)
				}
				fns[flat(list(m["Dimensions"])[0].(map[string]any)["Value"])] = true
			}
			if n > 10 {
				t.Errorf("an alarm reads %d metrics, more than CloudWatch's 10", n)
			}
		}
		for _, fn := range contract.Functions() {
			id, _ := function(t, fn)
			if !fns["${"+id+"}"] {
				t.Errorf("no alarm reads the Errors of %s", fn.Name)
			}
		}
	})

	t.Run("CloudWatch may use the key and the topic for this hub's alarms only", func(t *testing.T) {
		key := props(resources(shared.hub, "AWS::KMS::Key")[keyID(t)])
		var found bool
		for _, s := range statements(key["KeyPolicy"]) {
			if s["Sid"] != "CloudWatchAlarms" {
				continue
			}
			found = true
			if flat(s["Principal"].(map[string]any)["Service"]) != "cloudwatch.amazonaws.com" ||
				fmt.Sprint(s["Action"]) != "[kms:Decrypt kms:GenerateDataKey*]" {
				t.Errorf("statement %v", s)
			}
			cond := s["Condition"].(map[string]any)
			if flat(cond["StringEquals"].(map[string]any)["aws:SourceAccount"]) != shared.params.Account ||
				!strings.HasSuffix(flat(cond["ArnLike"].(map[string]any)["aws:SourceArn"]), ":alarm:"+env+"-*") {
				t.Errorf("conditions %v", cond)
			}
		}
		if !found {
			t.Error("no key policy statement for CloudWatch alarms")
		}
	})
}

func TestDashboard(t *testing.T) {
	dashboards := resources(shared.hub, "AWS::CloudWatch::Dashboard")
	if len(dashboards) != 1 {
		t.Fatalf("%d dashboards, want 1", len(dashboards))
	}
	var p map[string]any
	for _, d := range dashboards {
		p = props(d)
	}
	if want := shared.params.Hub.NamePrefix + "-dashboard"; p["DashboardName"] != want {
		t.Errorf("DashboardName = %v, want %s", p["DashboardName"], want)
	}
	body := flat(p["DashboardBody"])
	for _, title := range []string{hub.TitleSuccessRate, hub.TitlePatchCounts, hub.TitleAvailability, hub.TitleDuration,
		hub.TitleExecutions, hub.TitleLambdaErrors, hub.TitleLambdaThrottle, hub.TitleSFNFailures, hub.TitleErrorCauses,
		hub.TitleSkipped, hub.TitleApprovals, hub.TitleWaveDuration, hub.TitleAlarms, hub.TitleRunbook} {
		if !strings.Contains(body, title) {
			t.Errorf("no widget %q", title)
		}
	}
	for _, metric := range []string{contract.MetricPatchSuccess, contract.MetricPatchFailures, contract.MetricInstancesUnhealthy,
		contract.MetricInstancesSkipped, contract.MetricInstancesTargeted, contract.MetricInstancesHealthy,
		contract.MetricPendingApprovals, contract.MetricOldestPendingApprovalMinutes, contract.MetricWaveDurationSeconds,
		"ExecutionTime", "ExecutionsFailed", "ExecutionThrottled", "Errors", "Throttles", "handler failed", "errorType",
		"docs/runbook.md"} {
		if !strings.Contains(body, metric) {
			t.Errorf("the dashboard does not show %s", metric)
		}
	}
	for _, w := range shared.params.Waves {
		if !strings.Contains(body, `"WaveId","`+w.WaveID+`"`) {
			t.Errorf("no success rate of wave %s", w.WaveID)
		}
	}
}
