package hub

import (
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawscloudwatch"
	"github.com/aws/jsii-runtime-go"

	"github.com/ec2patch/ec2patch/internal/config"
	"github.com/ec2patch/ec2patch/internal/contract"
)

// Alarm names, after the hub's name prefix: <prefix>-<name>. The seed names
// the first three; operators search for them, so they are physical names.
const (
	AlarmPatchFailureRate     = "PatchFailureRate"
	AlarmInstanceDowntime     = "InstanceDowntime"
	AlarmApprovalTimeout      = "ApprovalTimeout"
	AlarmOrchestratorFailures = "OrchestratorFailures"
	AlarmLambdaErrors         = "LambdaErrors"
)

// AlarmNames lists every alarm the hub creates, in dashboard order.
func AlarmNames() []string {
	return []string{AlarmPatchFailureRate, AlarmInstanceDowntime, AlarmApprovalTimeout,
		AlarmOrchestratorFailures, AlarmLambdaErrors}
}

// DashboardName is the seed's dashboard name.
func DashboardName(namePrefix string) string { return namePrefix + "-dashboard" }

// maxAlarmMetrics is CloudWatch's limit of metrics in one metric-math
// alarm; LambdaErrors over more functions is a composite of alarms over at
// most this many.
const maxAlarmMetrics = 10

// Widget titles: the dashboard test and the runbook name them.
const (
	TitleSuccessRate    = "Patch success rate per wave (%)"
	TitlePatchCounts    = "Instances patched and failed per wave"
	TitleAvailability   = "Instance availability: targeted before, healthy and unhealthy after"
	TitleDuration       = "Orchestrator execution duration"
	TitleExecutions     = "Orchestrator executions"
	TitleLambdaErrors   = "Lambda errors by function"
	TitleLambdaThrottle = "Lambda throttles by function"
	TitleSFNFailures    = "Step Functions failures and throttles"
	TitleErrorCauses    = "Handler errors by errorType (Logs Insights)"
	TitleSkipped        = "Skipped instances by reason (compliance drift)"
	TitleApprovals      = "Pending approvals and oldest age (minutes)"
	TitleWaveDuration   = "Wave duration (seconds) by wave"
	TitleAlarms         = "Alarms"
	TitleRunbook        = "Runbook"
)

// Monitoring is the hub's dashboard and alarms.
type Monitoring struct {
	Dashboard awscloudwatch.Dashboard
	// Alarms by AlarmNames entry; LambdaErrors is a composite alarm when
	// there are more functions than one metric-math alarm may read.
	Alarms map[string]awscloudwatch.IAlarm
}

// monitoring creates the dashboard and the alarms. Every alarm notifies the
// topic, and treats missing data as fine: no run, no metric.
func (h *Stack) monitoring(p config.Params) {
	m := &monitor{h: h, p: p, env: p.Hub.NamePrefix,
		period: awscdk.Duration_Minutes(jsii.Number(float64(p.Hub.Alarms.PeriodMinutes)))}
	h.allowAlarmNotifications(p)
	h.Monitoring = &Monitoring{Alarms: m.alarms()}
	h.Monitoring.Dashboard = m.dashboard()
}

// allowAlarmNotifications lets CloudWatch alarms of this stack publish to
// the KMS-encrypted topic: the topic's policy and the key's policy must
// both name the service, limited to this account's alarms of this hub.
func (h *Stack) allowAlarmNotifications(p config.Params) {
	alarms := fmt.Sprintf("arn:%s:cloudwatch:%s:%s:alarm:%s-*", *awscdk.Aws_PARTITION(), *h.Region(), *h.Account(), p.Hub.NamePrefix)
	conditions := &map[string]interface{}{
		"StringEquals": map[string]interface{}{"aws:SourceAccount": *h.Account()},
		"ArnLike":      map[string]interface{}{"aws:SourceArn": alarms},
	}
	cloudwatch := &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)}
	h.Topic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchAlarms"),
		Principals: cloudwatch,
		Actions:    jsii.Strings("sns:Publish"),
		Resources:  jsii.Strings(*h.Topic.TopicArn()),
		Conditions: conditions,
	}))
	h.Key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchAlarms"),
		Principals: cloudwatch,
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"),
		Conditions: conditions,
	}), jsii.Bool(false))
}

type monitor struct {
	h      *Stack
	p      config.Params
	env    string
	period awscdk.Duration
}

// metric is one of the handlers' metrics for the whole environment.
func (m *monitor) metric(name, statistic string, dims map[string]string) awscloudwatch.Metric {
	d := map[string]*string{contract.DimEnvironment: jsii.String(m.env)}
	for k, v := range dims {
		d[k] = jsii.String(v)
	}
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:     jsii.String(contract.MetricNamespace),
		MetricName:    jsii.String(name),
		DimensionsMap: &d,
		Statistic:     jsii.String(statistic),
		Period:        m.period,
	})
}

// search is a SEARCH over one of the handlers' metrics by a dimension.
func (m *monitor) search(name, by, statistic, label string) awscloudwatch.MathExpression {
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String(fmt.Sprintf(`SEARCH('{%s,%s,%s} MetricName="%s" %s="%s"', '%s', %d)`,
			contract.MetricNamespace, contract.DimEnvironment, by, name, contract.DimEnvironment, m.env,
			statistic, int(*m.period.ToSeconds(nil)))),
		Label:        jsii.String(label),
		Period:       m.period,
		UsingMetrics: &map[string]awscloudwatch.IMetric{},
	})
}

func (m *monitor) alarm(name, what string, metric awscloudwatch.IMetric, threshold float64, actions bool) awscloudwatch.Alarm {
	a := awscloudwatch.NewAlarm(m.h.Stack, jsii.String(name+"Alarm"), &awscloudwatch.AlarmProps{
		AlarmName:          jsii.String(m.env + "-" + name),
		AlarmDescription:   jsii.String(what),
		Metric:             metric,
		Threshold:          jsii.Number(threshold),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(1),
		DatapointsToAlarm:  jsii.Number(1),
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	if actions {
		a.AddAlarmAction(awscloudwatchactions.NewSnsAction(m.h.Topic))
	}
	return a
}

func runbook(section string) string { return " Runbook: docs/runbook.md, section \"" + section + "\"." }

func (m *monitor) alarms() map[string]awscloudwatch.IAlarm {
	a := m.p.Hub.Alarms
	out := map[string]awscloudwatch.IAlarm{}
	out[AlarmPatchFailureRate] = m.alarm(AlarmPatchFailureRate,
		fmt.Sprintf("More than %d instances failed to patch within %d minutes. Read the run report, fix or exclude the failing instances, then re-run the same runId.",
			a.PatchFailures, a.PeriodMinutes)+runbook("Alarm: PatchFailureRate"),
		m.metric(contract.MetricPatchFailures, "Sum", nil), float64(a.PatchFailures), true)
	out[AlarmInstanceDowntime] = m.alarm(AlarmInstanceDowntime,
		fmt.Sprintf("More than %d instances failed the post-patch health check within %d minutes. Check their status checks and SSM agent now; pause the campaign.",
			a.InstancesUnhealthy, a.PeriodMinutes)+runbook("Alarm: InstanceDowntime"),
		m.metric(contract.MetricInstancesUnhealthy, "Sum", nil), float64(a.InstancesUnhealthy), true)
	approvalPeriod := awscdk.Duration_Minutes(jsii.Number(float64(m.p.Hub.ReconcileIntervalMinutes)))
	oldest := m.metric(contract.MetricOldestPendingApprovalMinutes, "Maximum", nil).With(&awscloudwatch.MetricOptions{Period: approvalPeriod})
	out[AlarmApprovalTimeout] = m.alarm(AlarmApprovalTimeout,
		fmt.Sprintf("An approval gate has waited more than %d minutes. Find the approval message and decide, or the wave is rejected when its links expire.",
			a.ApprovalAgeMinutes)+runbook("Alarm: ApprovalTimeout"),
		oldest, float64(a.ApprovalAgeMinutes), true)

	sm := m.h.StateMachine.Orchestrator
	opts := &awscloudwatch.MetricOptions{Period: m.period, Statistic: jsii.String("Sum")}
	out[AlarmOrchestratorFailures] = m.alarm(AlarmOrchestratorFailures,
		"A PatchOrchestrator execution failed, timed out or was aborted. Open its execution history, find the failed state and its error."+
			runbook("Alarm: OrchestratorFailures"),
		awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression: jsii.String("FILL(failed, 0) + FILL(timedOut, 0) + FILL(aborted, 0)"),
			Label:      jsii.String("Executions failed, timed out or aborted"),
			Period:     m.period,
			UsingMetrics: &map[string]awscloudwatch.IMetric{
				"failed": sm.MetricFailed(opts), "timedOut": sm.MetricTimedOut(opts), "aborted": sm.MetricAborted(opts),
			},
		}), 0, true)
	out[AlarmLambdaErrors] = m.lambdaErrors(opts)
	return out
}

// lambdaErrors alarms when any handler reports an error: one metric-math
// alarm over every function's Errors, or, beyond maxAlarmMetrics
// functions, an alarm per group and a composite of them that notifies.
func (m *monitor) lambdaErrors(opts *awscloudwatch.MetricOptions) awscloudwatch.IAlarm {
	what := "A Lambda handler returned an error. Read the dashboard's errorType table and the function's log group." +
		runbook("Alarm: LambdaErrors")
	fns := contract.Functions()
	var groups [][]contract.Function
	for len(fns) > 0 {
		n := min(len(fns), maxAlarmMetrics)
		groups = append(groups, fns[:n])
		fns = fns[n:]
	}
	errorsOf := func(group []contract.Function) awscloudwatch.IMetric {
		using := map[string]awscloudwatch.IMetric{}
		var terms []string
		for i, fn := range group {
			id := fmt.Sprintf("e%d", i)
			using[id] = m.h.Functions[fn.Name].MetricErrors(opts)
			terms = append(terms, "FILL("+id+", 0)")
		}
		return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression:   jsii.String(strings.Join(terms, " + ")),
			Label:        jsii.String("Lambda errors"),
			Period:       m.period,
			UsingMetrics: &using,
		})
	}
	if len(groups) == 1 {
		return m.alarm(AlarmLambdaErrors, what, errorsOf(groups[0]), 0, true)
	}
	var parts []awscloudwatch.IAlarmRule
	for i, g := range groups {
		name := fmt.Sprintf("%s-%d", AlarmLambdaErrors, i+1)
		parts = append(parts, m.alarm(name, fmt.Sprintf("Part %d of %s-%s.", i+1, m.env, AlarmLambdaErrors)+" "+what, errorsOf(g), 0, false))
	}
	c := awscloudwatch.NewCompositeAlarm(m.h.Stack, jsii.String(AlarmLambdaErrors+"Alarm"), &awscloudwatch.CompositeAlarmProps{
		CompositeAlarmName: jsii.String(m.env + "-" + AlarmLambdaErrors),
		AlarmDescription:   jsii.String(what),
		AlarmRule:          awscloudwatch.AlarmRule_AnyOf(parts...),
	})
	c.AddAlarmAction(awscloudwatchactions.NewSnsAction(m.h.Topic))
	return c
}

func (m *monitor) dashboard() awscloudwatch.Dashboard {
	graph := func(title string, width float64, left, right []awscloudwatch.IMetric, annotations ...*awscloudwatch.HorizontalAnnotation) awscloudwatch.GraphWidget {
		props := &awscloudwatch.GraphWidgetProps{Title: jsii.String(title), Width: jsii.Number(width), Height: jsii.Number(6),
			Left: &left, Period: m.period}
		if len(right) > 0 {
			props.Right = &right
		}
		if len(annotations) > 0 {
			a := make([]*awscloudwatch.HorizontalAnnotation, len(annotations))
			copy(a, annotations)
			props.LeftAnnotations = &a
		}
		return awscloudwatch.NewGraphWidget(props)
	}
	alarmsCfg := m.p.Hub.Alarms

	// Success rate: the plan's waves are known at synth time, so each gets
	// its own ratio; SEARCH below shows the counts of any wave a run names.
	var rates []awscloudwatch.IMetric
	seen := map[string]bool{}
	for _, w := range m.p.Waves {
		if seen[w.WaveID] || len(rates) >= 40 {
			continue
		}
		seen[w.WaveID] = true
		rates = append(rates, m.rate(len(rates), w.WaveID, map[string]string{contract.DimWaveID: w.WaveID}))
	}
	rates = append(rates, m.rate(len(rates), "All waves", nil))

	sm := m.h.StateMachine.Orchestrator
	sum := &awscloudwatch.MetricOptions{Period: m.period, Statistic: jsii.String("Sum")}
	stat := func(s string) *awscloudwatch.MetricOptions {
		return &awscloudwatch.MetricOptions{Period: m.period, Statistic: jsii.String(s), Label: jsii.String(s)}
	}
	var lambdaErrs, lambdaThrottles []awscloudwatch.IMetric
	var logGroups []*string
	for _, fn := range contract.Functions() {
		f := m.h.Functions[fn.Name]
		lambdaErrs = append(lambdaErrs, f.MetricErrors(&awscloudwatch.MetricOptions{Period: m.period, Statistic: jsii.String("Sum"), Label: jsii.String(fn.Name)}))
		lambdaThrottles = append(lambdaThrottles, f.MetricThrottles(&awscloudwatch.MetricOptions{Period: m.period, Statistic: jsii.String("Sum"), Label: jsii.String(fn.Name)}))
		logGroups = append(logGroups, f.LogGroup().LogGroupName())
	}
	threshold := func(v float64, label string) *awscloudwatch.HorizontalAnnotation {
		return &awscloudwatch.HorizontalAnnotation{Value: jsii.Number(v), Label: jsii.String(label)}
	}
	var alarmList []interfacesawscloudwatch.IAlarmRef
	var alarmLines []string
	for _, name := range AlarmNames() {
		alarmList = append(alarmList, m.h.Monitoring.Alarms[name])
		alarmLines = append(alarmLines, fmt.Sprintf("- `%s-%s`: see \"Alarm: %s\"", m.env, name, name))
	}
	text := "## ec2patch " + m.env + "\n" +
		"Runbook: `docs/runbook.md` (start a run, approvals, re-runs, alarms). Alarms notify the hub's SNS topic:\n" +
		strings.Join(alarmLines, "\n")

	rows := [][]awscloudwatch.IWidget{
		{
			graph(TitleSuccessRate, 12, rates, nil),
			graph(TitlePatchCounts, 12, []awscloudwatch.IMetric{
				m.search(contract.MetricPatchSuccess, contract.DimWaveID, "Sum", "Patched"),
			}, []awscloudwatch.IMetric{
				m.search(contract.MetricPatchFailures, contract.DimWaveID, "Sum", "Failed"),
			}),
		},
		{
			graph(TitleAvailability, 12, []awscloudwatch.IMetric{
				m.metric(contract.MetricInstancesTargeted, "Sum", nil).With(&awscloudwatch.MetricOptions{Label: jsii.String("Targeted (before)")}),
				m.metric(contract.MetricInstancesHealthy, "Sum", nil).With(&awscloudwatch.MetricOptions{Label: jsii.String("Healthy (after)")}),
				m.metric(contract.MetricInstancesUnhealthy, "Sum", nil).With(&awscloudwatch.MetricOptions{Label: jsii.String("Unhealthy (after)")}),
			}, nil, threshold(float64(alarmsCfg.InstancesUnhealthy), "InstanceDowntime")),
			graph(TitleSkipped, 12, []awscloudwatch.IMetric{
				m.search(contract.MetricInstancesSkipped, contract.DimReason, "Sum", "Skipped"),
			}, nil),
		},
		{
			graph(TitleDuration, 8, []awscloudwatch.IMetric{
				sm.MetricTime(stat("p50")), sm.MetricTime(stat("p90")), sm.MetricTime(stat("Maximum")),
			}, nil),
			graph(TitleExecutions, 8, []awscloudwatch.IMetric{
				sm.MetricStarted(withLabel(sum, "Started")), sm.MetricSucceeded(withLabel(sum, "Succeeded")),
				sm.MetricFailed(withLabel(sum, "Failed")), sm.MetricAborted(withLabel(sum, "Aborted")),
				sm.MetricTimedOut(withLabel(sum, "Timed out")),
			}, nil),
			graph(TitleSFNFailures, 8, []awscloudwatch.IMetric{
				sm.MetricFailed(withLabel(sum, "ExecutionsFailed")), sm.MetricThrottled(withLabel(sum, "ExecutionThrottled")),
			}, nil),
		},
		{
			graph(TitleLambdaErrors, 8, lambdaErrs, nil),
			graph(TitleLambdaThrottle, 8, lambdaThrottles, nil),
			awscloudwatch.NewLogQueryWidget(&awscloudwatch.LogQueryWidgetProps{
				Title:         jsii.String(TitleErrorCauses),
				LogGroupNames: &logGroups,
				QueryString: jsii.String("fields @timestamp, errorType, errorMessage, @log\n" +
					"| filter msg = \"handler failed\"\n" +
					"| stats count(*) as errors by errorType, @log\n" +
					"| sort errors desc"),
				View:   awscloudwatch.LogQueryVisualizationType_TABLE,
				Width:  jsii.Number(8),
				Height: jsii.Number(6),
			}),
		},
		{
			graph(TitleApprovals, 12, []awscloudwatch.IMetric{
				m.metric(contract.MetricPendingApprovals, "Maximum", nil).With(&awscloudwatch.MetricOptions{Label: jsii.String("Pending approvals")}),
			}, []awscloudwatch.IMetric{
				m.metric(contract.MetricOldestPendingApprovalMinutes, "Maximum", nil).With(&awscloudwatch.MetricOptions{Label: jsii.String("Oldest (minutes)")}),
			}),
			graph(TitleWaveDuration, 12, []awscloudwatch.IMetric{
				m.search(contract.MetricWaveDurationSeconds, contract.DimWaveID, "Maximum", "Wave duration"),
			}, nil),
		},
		{
			awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{
				Title: jsii.String(TitleAlarms), Alarms: &alarmList, Width: jsii.Number(12), Height: jsii.Number(6),
			}),
			awscloudwatch.NewTextWidget(&awscloudwatch.TextWidgetProps{
				Markdown: jsii.String("# " + TitleRunbook + "\n" + text), Width: jsii.Number(12), Height: jsii.Number(6),
			}),
		},
	}
	widgets := make([]*[]awscloudwatch.IWidget, len(rows))
	for i := range rows {
		widgets[i] = &rows[i]
	}
	return awscloudwatch.NewDashboard(m.h.Stack, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DashboardName: jsii.String(DashboardName(m.env)),
		Widgets:       &widgets,
	})
}

// rate is PatchSuccess / (PatchSuccess + PatchFailures) * 100 for one wave
// (or every wave, with no WaveId dimension). id keeps each rate's metric
// IDs apart in one graph.
func (m *monitor) rate(id int, label string, dims map[string]string) awscloudwatch.IMetric {
	s, f := fmt.Sprintf("s%d", id), fmt.Sprintf("f%d", id)
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String(fmt.Sprintf("100 * FILL(%[1]s, 0) / (FILL(%[1]s, 0) + FILL(%[2]s, 0))", s, f)),
		Label:      jsii.String(label),
		Period:     m.period,
		UsingMetrics: &map[string]awscloudwatch.IMetric{
			s: m.metric(contract.MetricPatchSuccess, "Sum", dims),
			f: m.metric(contract.MetricPatchFailures, "Sum", dims),
		},
	})
}

func withLabel(o *awscloudwatch.MetricOptions, label string) *awscloudwatch.MetricOptions {
	c := *o
	c.Label = jsii.String(label)
	return &c
}
