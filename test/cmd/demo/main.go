// Command demo runs a whole patch campaign on the emulator: it starts moto
// and the test proxy, deploys ec2patch, seeds a scenario fleet, runs a plan,
// shows the run's progress from the execution history, and prints the run
// report next to the counts the fleet should produce. It ends with where the
// report went (its S3 URIs), the instance ledger's answer to "when was this
// instance last patched" for two instances, and a summary table per wave.
//
//	go run ./test/cmd/demo -fleet test/fleets/demo.json -report demo-report.json
//
// The exit status is non-zero only when the run fails to execute (the
// execution did not succeed), not when patches fail.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/test/emulator"
	"github.com/ec2patch/ec2patch/test/fleet"
	"github.com/ec2patch/ec2patch/test/proxy"
)

func main() {
	fleetFile := flag.String("fleet", "test/fleets/demo.json", "scenario fleet file")
	planFile := flag.String("plan", "test/fleets/demo-plan.json", "run input (the plan) to start the orchestrator with")
	reportFile := flag.String("report", "demo-report.json", "where to write the run report JSON")
	verbose := flag.Bool("v", false, "print the handlers' log lines as they are written")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Stdout, *fleetFile, *planFile, *reportFile, *verbose)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
	}
	os.Exit(code)
}

func run(ctx context.Context, out io.Writer, fleetFile, planFile, reportFile string, verbose bool) (int, error) {
	f, err := fleet.Load(fleetFile)
	if err != nil {
		return 2, err
	}
	plan, err := os.ReadFile(planFile)
	if err != nil {
		return 2, fmt.Errorf("plan: %w", err)
	}
	opts := emulator.Options{Fleet: f, Logf: func(format string, args ...any) {
		fmt.Fprintf(out, "setup: "+format+"\n", args...)
	}}
	if verbose {
		opts.Logs = os.Stderr
	}
	started := time.Now()
	h, err := emulator.New(ctx, opts)
	if err != nil {
		if errors.Is(err, emulator.ErrNoMoto) {
			return 2, fmt.Errorf("%w\nrun `make tools` first (or set %s)", err, emulator.EnvMotoServer)
		}
		return 2, err
	}
	defer h.Close()
	fmt.Fprintf(out, "setup: done in %s\n\n", time.Since(started).Round(time.Millisecond))

	name := "demo-" + time.Now().UTC().Format("20060102-150405")
	mark := h.Proxy.Mark()
	arn, err := h.Start(ctx, string(plan), name)
	if err != nil {
		return 2, err
	}
	fmt.Fprintf(out, "run %s started\n", name)
	// The scripted approver answers the gates through the approval API, as
	// the fleet's approvals say.
	stopApprover := h.AnswerApprovals(ctx, string(plan), name, f.Approvals)
	pv := &progress{out: out, start: time.Now()}
	res, err := h.Wait(ctx, arn, pv.event)
	answers := stopApprover()
	if err != nil {
		return 2, err
	}
	res.Calls = h.Proxy.Calls(mark)
	fmt.Fprintln(out)
	printAnswers(out, answers)

	if res.Report != nil {
		data, err := json.MarshalIndent(res.Report, "", "  ")
		if err != nil {
			return 2, err
		}
		if err := os.WriteFile(reportFile, append(data, '\n'), 0o600); err != nil { //nolint:gosec // G703: the operator names the report file
			return 2, fmt.Errorf("write report: %w", err)
		}
		runInput, err := contract.Normalize(plan, h.Params.RunDefaults(), h.Params.Waves, name, "")
		if err != nil {
			return 2, fmt.Errorf("plan: %w", err)
		}
		printReport(out, res.Report, fleet.Expected(f, runInput))
		fmt.Fprintf(out, "report written to %s\n\n", reportFile)
		printUnstarted(out, res.Report, runInput, res.Calls)
	} else {
		fmt.Fprintf(out, "no run report was written\n\n")
	}
	printCalls(out, res.Calls, h.Params.Account)
	fmt.Fprintf(out, "execution %s: %s, %d history events\n", res.Name, res.Status, len(res.History))
	if res.Status != string(sfntypes.ExecutionStatusSucceeded) {
		fmt.Fprintf(out, "execution failed: %s: %s\n", res.Error, res.Cause)
		if logs := h.Proxy.Logs(); logs != "" && !verbose {
			fmt.Fprintf(out, "\nhandler output:\n%s", logs)
		}
		return 1, nil
	}
	if res.Summary != nil && res.Report != nil {
		fmt.Fprintln(out)
		printWhere(out, res.Summary, h.Outputs[contract.OutputTableName])
		if err := printLedger(ctx, out, h, res.Report); err != nil {
			return 2, err
		}
		if err := printSummary(out, res.Report); err != nil {
			return 2, err
		}
	}
	return 0, nil
}

// printWhere says where the run's record went.
func printWhere(out io.Writer, sum *contract.ReportSummary, table string) {
	fmt.Fprintln(out, "where the run's record went:")
	fmt.Fprintf(out, "  report (JSON)  %s\n", sum.ReportURI)
	fmt.Fprintf(out, "  report (CSV)   %s\n", sum.CSVURI)
	fmt.Fprintf(out, "  ledger         DynamoDB table %s, one row per instance: pk %s, sk %s<time>#<runId>\n\n",
		table, contract.LedgerPK("<account>", "<region>", "<instanceId>"), contract.LedgerSKPrefix)
}

// historian answers "when was this instance last patched".
type historian interface {
	InstanceHistory(ctx context.Context, account, region, instanceID string, limit int) ([]contract.LedgerEntry, error)
}

// printLedger asks the ledger, with one Query each, about two instances of
// the report: the first patched (or scanned) one and the first that was
// not.
func printLedger(ctx context.Context, out io.Writer, h historian, r *contract.Report) error {
	type pick struct{ account, region, id string }
	var good, bad *pick
	for _, w := range r.Waves {
		for _, t := range w.Targets {
			for _, in := range t.Instances {
				p := &pick{t.Account, t.Region, in.InstanceID}
				switch in.Status {
				case contract.InstancePatched, contract.InstanceScanned:
					if good == nil {
						good = p
					}
				default:
					if bad == nil {
						bad = p
					}
				}
			}
		}
	}
	fmt.Fprintln(out, "last patched, from the ledger (one Query per instance, newest row first):")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tACCOUNT\tREGION\tSTATUS\tAT\tRUN\tWAVE\tCOMMAND\tREASON")
	for _, p := range []*pick{good, bad} {
		if p == nil {
			continue
		}
		hist, err := h.InstanceHistory(ctx, p.account, p.region, p.id, 1)
		if err != nil {
			return err
		}
		if len(hist) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\tno ledger row\t\t\t\t\t\n", p.id, p.account, p.region)
			continue
		}
		e := hist[0]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.InstanceID, e.Account, e.Region, e.Status, e.At,
			e.RunID, e.WaveID, orDash(e.CommandID), orDash(e.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printSummary is the run in one table: each wave's status and instance
// counts (patched counts scanned instances too in a dry run).
func printSummary(out io.Writer, r *contract.Report) error {
	fmt.Fprintf(out, "summary of run %s:\n", r.RunID)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WAVE\tSTATUS\tPATCHED\tFAILED\tTIMED OUT\tSKIPPED\t")
	row := func(name, status string, c contract.Counts) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t\n", name, status, c.Patched+c.Scanned, c.Failed, c.TimedOut, c.Skipped)
	}
	for _, w := range r.Waves {
		row(w.WaveID, w.Status, w.Counts)
	}
	row("TOTAL", r.Status, r.Totals)
	return tw.Flush()
}

// printAnswers says how each approval gate was answered.
func printAnswers(out io.Writer, answers []emulator.Answer) {
	if len(answers) == 0 {
		return
	}
	fmt.Fprintln(out, "approval decisions:")
	for _, a := range answers {
		switch {
		case a.Decision == fleet.ApprovalTimeout:
			fmt.Fprintf(out, "  %s: not answered (the approval times out)\n", a.WaveID)
		case a.Err != nil:
			fmt.Fprintf(out, "  %s: %s by %s FAILED: %v\n", a.WaveID, a.Decision, a.Approver, a.Err)
		default:
			fmt.Fprintf(out, "  %s: %s by %s through the approval API (GET %d, record %s after it; POST %d)\n",
				a.WaveID, a.Decision, a.Approver, a.GetStatus, a.StatusAfterGet, a.PostStatus)
		}
	}
	fmt.Fprintln(out)
}

// printUnstarted says, for every wave that did not run (gated, aborted or
// not started), whether any call reached its accounts.
func printUnstarted(out io.Writer, r *contract.Report, run contract.Run, calls []proxy.Call) {
	accounts := map[string][]string{}
	for _, w := range run.Waves {
		accounts[w.WaveID] = w.Accounts
	}
	for _, w := range r.Waves {
		if len(w.Targets) > 0 || w.Status == contract.StatusSucceeded || w.Status == contract.StatusFailed {
			continue
		}
		commands, other := 0, 0
		for _, c := range calls {
			for _, a := range accounts[w.WaveID] {
				if c.TargetAccount() != a {
					continue
				}
				if c.Service == "ssm" && c.Action == "SendCommand" {
					commands++
				} else {
					other++
				}
			}
		}
		verdict := "no command and no call reached its accounts"
		switch {
		case commands > 0:
			verdict = fmt.Sprintf("%d SendCommand and %d other calls reached its accounts", commands, other)
		case other > 0 && w.Status == contract.StatusRejected:
			verdict = fmt.Sprintf("no command; its approval preview made %d read-only calls", other)
		case other > 0:
			verdict = fmt.Sprintf("no command, but %d other calls reached its accounts", other)
		}
		fmt.Fprintf(out, "wave %s %s (accounts %s): %s\n", w.WaveID, w.Status, strings.Join(accounts[w.WaveID], ","), verdict)
	}
	fmt.Fprintln(out)
}

// progress prints a readable line for the history events that matter.
type progress struct {
	out   io.Writer
	start time.Time
}

func (p *progress) printf(format string, args ...any) {
	fmt.Fprintf(p.out, "  %6.1fs  %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

func (p *progress) event(e sfntypes.HistoryEvent) {
	if d := e.StateEnteredEventDetails; d != nil {
		p.entered(aws.ToString(d.Name), aws.ToString(d.Input))
	}
	if d := e.StateExitedEventDetails; d != nil {
		p.exited(aws.ToString(d.Name), aws.ToString(d.Output))
	}
	switch {
	case e.TaskFailedEventDetails != nil:
		p.printf("task failed: %s: %s", aws.ToString(e.TaskFailedEventDetails.Error), aws.ToString(e.TaskFailedEventDetails.Cause))
	case e.LambdaFunctionFailedEventDetails != nil:
		p.printf("lambda failed: %s: %s", aws.ToString(e.LambdaFunctionFailedEventDetails.Error), aws.ToString(e.LambdaFunctionFailedEventDetails.Cause))
	case e.ExecutionFailedEventDetails != nil:
		p.printf("execution failed: %s: %s", aws.ToString(e.ExecutionFailedEventDetails.Error), aws.ToString(e.ExecutionFailedEventDetails.Cause))
	case e.ExecutionSucceededEventDetails != nil:
		p.printf("execution succeeded")
	}
}

func (p *progress) entered(state, input string) {
	switch state {
	case contract.StatePatchTargets:
		var s struct {
			Wave contract.Wave `json:"wave"`
		}
		_ = json.Unmarshal([]byte(input), &s)
		p.printf("wave %d %s started: %d account-region(s), accounts %s, regions %s",
			s.Wave.Index+1, s.Wave.WaveID, s.Wave.TargetCount, strings.Join(s.Wave.Accounts, ","), strings.Join(s.Wave.Regions, ","))
	case contract.StateRequestApproval:
		var s struct {
			Wave contract.Wave `json:"wave"`
			Run  contract.Run  `json:"run"`
		}
		_ = json.Unmarshal([]byte(input), &s)
		p.printf("wave %s waits for approval (up to %ds)", s.Wave.WaveID, s.Run.ApprovalTimeoutSeconds)
	case contract.StateAlarmsBefore, contract.StateAlarmsAfter:
		var s struct {
			Wave contract.Wave `json:"wave"`
		}
		_ = json.Unmarshal([]byte(input), &s)
		p.printf("checking halt alarms %s of wave %s", strings.Join(s.Wave.HaltAlarms, ","), s.Wave.WaveID)
	case contract.StateWavePause:
		var s struct {
			Run contract.Run `json:"run"`
		}
		_ = json.Unmarshal([]byte(input), &s)
		if s.Run.WavePauseSeconds > 0 {
			p.printf("pausing %ds before the next wave", s.Run.WavePauseSeconds)
		}
	}
}

func (p *progress) exited(state, output string) {
	switch state {
	case contract.StatePrepareRun:
		var r contract.PrepareResult
		_ = json.Unmarshal([]byte(output), &r)
		p.printf("run prepared: runId %s, %d wave(s), operation %s, poll every %ds",
			r.Run.RunID, r.Run.WaveCount, r.Run.Operation, r.Run.PollIntervalSeconds)
	case contract.StatePatchTargets:
		p.printf("targets done")
	case contract.StateRequestApproval:
		var s struct {
			Approval *contract.ApprovalDecision `json:"approval"`
		}
		_ = json.Unmarshal([]byte(output), &s)
		if a := s.Approval; a != nil {
			p.printf("wave %s approved by %s at %s from %s", a.WaveID, a.Approver, a.DecidedAt, a.SourceIP)
		}
	case contract.StateApprovalRejected, contract.StateHaltedByAlarm:
		var s struct {
			Verdict contract.WaveVerdict `json:"verdict"`
		}
		_ = json.Unmarshal([]byte(output), &s)
		p.printf("wave %s %s: %s", s.Verdict.WaveID, s.Verdict.Status, s.Verdict.Reason)
	case contract.StateEvaluateWave:
		var s struct {
			Verdict contract.WaveVerdict `json:"verdict"`
		}
		_ = json.Unmarshal([]byte(output), &s)
		v := s.Verdict
		reason := ""
		if v.Reason != "" {
			reason = ": " + v.Reason
		}
		p.printf("wave %s verdict %s (%s)%s", v.WaveID, v.Status, countsText(v.Counts), reason)
	case contract.StateWriteRunReport:
		var s contract.ReportSummary
		_ = json.Unmarshal([]byte(output), &s)
		p.printf("run report written: %s (%s) %s", s.Status, countsText(s.Totals), s.ReportURI)
	}
}

func countsText(c contract.Counts) string {
	return fmt.Sprintf("patched %d, scanned %d, failed %d, timed out %d, skipped %d",
		c.Patched, c.Scanned, c.Failed, c.TimedOut, c.Skipped)
}

func countsCols(c contract.Counts) string {
	return fmt.Sprintf("%d\t%d\t%d\t%d\t%d", c.Patched, c.Scanned, c.Failed, c.TimedOut, c.Skipped)
}

// printReport prints the report as a table, each target next to what the
// fleet should give, and says whether they all match.
func printReport(out io.Writer, r *contract.Report, exp fleet.Expectation) {
	fmt.Fprintf(out, "run %s: %s (%s)\n", r.RunID, r.Status, r.Operation)
	expected := map[string]fleet.TargetExpectation{}
	expWave := map[string]fleet.WaveExpectation{}
	for _, w := range exp.Waves {
		expWave[w.WaveID] = w
		for _, t := range w.Targets {
			expected[w.WaveID+"/"+t.Account+"/"+t.Region] = t
		}
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WAVE\tACCOUNT\tREGION\tSTATUS\tPATCHED\tSCANNED\tFAILED\tTIMEDOUT\tSKIPPED\tEXPECTED\tMATCH\tREASON")
	matches := r.Status == exp.Status && r.Totals == exp.Totals
	seen := 0
	for _, w := range r.Waves {
		ew := expWave[w.WaveID]
		ok := w.Status == ew.Status
		matches = matches && ok
		fmt.Fprintf(tw, "%s\t\t\t%s\t%s\t%s\t%s\t%s\n", w.WaveID, w.Status, countsCols(w.Counts), ew.Status, mark(ok), w.Reason)
		if a := w.Approval; a != nil {
			fmt.Fprintf(tw, "\tapproval\t\t%s\t\t\t\t\t\t\t\tby %s at %s from %s\n", a.Decision, a.Approver, a.DecidedAt, a.SourceIP)
		}
		for _, t := range w.Targets {
			e, found := expected[w.WaveID+"/"+t.Account+"/"+t.Region]
			ok := found && e.Status == t.Status && e.Counts == t.Counts && strings.Contains(t.Reason, e.ReasonContains)
			matches = matches && ok
			seen++
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t%s %s\t%s\t%s\n", t.Account, t.Region, t.Status, countsCols(t.Counts),
				e.Status, strings.ReplaceAll(countsCols(e.Counts), "\t", "/"), mark(ok), t.Reason)
		}
	}
	fmt.Fprintf(tw, "TOTAL\t\t\t%s\t%s\t%s %s\t%s\t\n", r.Status, countsCols(r.Totals), exp.Status,
		strings.ReplaceAll(countsCols(exp.Totals), "\t", "/"), mark(r.Status == exp.Status && r.Totals == exp.Totals))
	_ = tw.Flush()
	want := 0
	for _, w := range exp.Waves {
		want += len(w.Targets)
	}
	matches = matches && seen == want
	fmt.Fprintf(out, "(EXPECTED is the fleet's status and patched/scanned/failed/timedOut/skipped)\n")
	if matches {
		fmt.Fprintf(out, "the report matches the fleet's expected counts\n")
	} else {
		fmt.Fprintf(out, "the report DOES NOT match the fleet's expected counts (%d of %d targets reported)\n", seen, want)
	}
}

func mark(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

// printCalls prints the API calls the run made, per service, in the hub and
// in the spokes.
func printCalls(out io.Writer, calls []proxy.Call, hub string) {
	type key struct{ service, action string }
	hubN, spokeN := map[key]int{}, map[key]int{}
	for _, c := range calls {
		k := key{c.Service, c.Action}
		if c.TargetAccount() == hub {
			hubN[k]++
		} else {
			spokeN[k]++
		}
	}
	keys := map[key]bool{}
	for k := range hubN {
		keys[k] = true
	}
	for k := range spokeN {
		keys[k] = true
	}
	sorted := make([]key, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].service != sorted[j].service {
			return sorted[i].service < sorted[j].service
		}
		return sorted[i].action < sorted[j].action
	})
	fmt.Fprintf(out, "API calls made during the run (%d):\n", len(calls))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tACTION\tHUB\tSPOKE")
	for _, k := range sorted {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", k.service, k.action, hubN[k], spokeN[k])
	}
	_ = tw.Flush()
	fmt.Fprintln(out)
}
