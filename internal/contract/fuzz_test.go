package contract_test

import (
	"errors"
	"testing"

	"github.com/ec2patch/ec2patch/internal/contract"
)

// FuzzNormalize: any input either normalizes into a run that satisfies the
// contract's invariants, or fails with a ValidationError that names at least
// one problem. It never panics.
func FuzzNormalize(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"waveId": "wave1-critical", "dryRun": false, "accounts": ["111111111111"], "regions": ["us-east-1"], "tagFilters": {"PatchGroup": "default"}}`,
		`{"runId": "2026-12-patch", "dryRun": true, "waves": [{"waveId": "canary", "accounts": ["111111111111"], "regions": ["us-east-1"], "maxConcurrency": 5, "ssmMaxConcurrency": "10%", "ssmMaxErrors": "1%", "failureThresholdPercent": 0}]}`,
		`{"waveId": "wave2"}`,
		`{"waves": [{"waveId": "w", "accounts": ["1"], "regions": ["x"]}]}`,
		`null`, `[]`, `{"pollIntervalSeconds": -1}`, `{"a": {"b": [1, {"c": null}]}}`,
	} {
		f.Add([]byte(seed), "exec-name")
	}
	f.Fuzz(func(t *testing.T, raw []byte, name string) {
		run, err := contract.Normalize(raw, defaults(), plan(), name, "t0")
		if err != nil {
			var ve *contract.ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("error without problems: %v", err)
			}
			return
		}
		if run.WaveCount != len(run.Waves) || run.WaveCount == 0 {
			t.Fatalf("waveCount %d for %d waves", run.WaveCount, len(run.Waves))
		}
		if run.PollIntervalSeconds < 1 || run.MaxPollAttempts < 1 {
			t.Fatalf("poll interval %d, attempts %d", run.PollIntervalSeconds, run.MaxPollAttempts)
		}
		if run.DryRun && (run.Operation != contract.OperationScan || run.RebootOption != contract.NoReboot) {
			t.Fatalf("dry run with operation %s, reboot %s", run.Operation, run.RebootOption)
		}
		for _, w := range run.Waves {
			if len(w.TagFilters) == 0 || w.MaxConcurrency < 1 || w.TargetCount != len(w.Targets()) {
				t.Fatalf("wave %+v breaks an invariant", w)
			}
			for _, ref := range w.Targets() {
				if !contract.ValidAccount(ref.Account) || !contract.ValidRegion(ref.Region) {
					t.Fatalf("invalid target %+v", ref)
				}
			}
		}
	})
}
