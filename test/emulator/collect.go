package emulator

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/ec2patch/ec2patch/test/iamcheck"
)

// collector keeps, for a check that spans a whole test package, what every
// harness saw: its calls and the roles deployed. It is process-wide because
// each test builds its own harness and TestMain sees none of them.
var collector struct {
	mu   sync.Mutex
	on   bool
	runs []iamcheck.Run
	errs []error
}

// CollectIAM makes every harness keep its calls and roles when it closes,
// for CollectedIAM. Call it from TestMain before m.Run.
func CollectIAM() {
	collector.mu.Lock()
	defer collector.mu.Unlock()
	collector.on = true
}

// CollectedIAM returns what the closed harnesses kept, and the errors met
// reading their roles.
func CollectedIAM() ([]iamcheck.Run, []error) {
	collector.mu.Lock()
	defer collector.mu.Unlock()
	return collector.runs, collector.errs
}

// collectIAM reads the roles of the hub and of every spoke account from
// moto, before it stops, and keeps them with the calls.
func (h *Harness) collectIAM() {
	collector.mu.Lock()
	on := collector.on
	collector.mu.Unlock()
	if !on || h.Proxy == nil || h.StateMachineARN == "" {
		return
	}
	run, err := h.iamRun()
	collector.mu.Lock()
	defer collector.mu.Unlock()
	if err != nil {
		collector.errs = append(collector.errs, err)
		return
	}
	collector.runs = append(collector.runs, run)
}

func (h *Harness) iamRun() (iamcheck.Run, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := iamcheck.Run{Calls: h.Proxy.Calls(0)}
	sm, err := h.sfn.DescribeStateMachine(ctx, &sfn.DescribeStateMachineInput{StateMachineArn: aws.String(h.StateMachineARN)})
	if err != nil {
		return run, fmt.Errorf("emulator: orchestrator role: %w", err)
	}
	run.InterpreterRole = aws.ToString(sm.RoleArn)
	accounts := []string{h.Params.Account}
	for _, a := range h.Fleet.Accounts {
		if !a.RoleMissing && a.ID != h.Params.Account {
			accounts = append(accounts, a.ID)
		}
	}
	for _, a := range accounts {
		cfg, err := h.accountConfig(ctx, a, h.Params.Region)
		if err != nil {
			return run, err
		}
		roles, err := iamcheck.LoadRoles(ctx, cfg)
		if err != nil {
			return run, fmt.Errorf("emulator: roles of %s: %w", a, err)
		}
		run.Roles = append(run.Roles, roles...)
	}
	return run, nil
}
