// Command bench runs the same generated fleet through ec2patch and through a
// reference definition of the seed's design on the emulator, prints a table
// of the counts (executions, largest history, state transitions, Lambda
// invocations, API calls per account-region) and writes them as JSON to
// $BENCH_OUT (default bench.json). Time on the emulator is compressed: the
// counts are the result, not the seconds.
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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ec2patch/ec2patch/test/bench"
	"github.com/ec2patch/ec2patch/test/emulator"
)

func main() {
	sizes := flag.String("sizes", "10,200", "fleet sizes in account-regions, comma-separated")
	minutes := flag.String("minutes", "10,40", "simulated patch durations in minutes, comma-separated")
	factor := flag.Float64("factor", 15, "simulated seconds per real second (the seed's 15 s poll Wait is 15/factor real seconds, at least 1)")
	instances := flag.Int("instances", 2, "instances per account-region")
	maxSeed := flag.Float64("max-seed-seconds", 600, "skip a seed-design run estimated to take longer (real seconds); 0 runs all")
	outFile := flag.String("out", envOr("BENCH_OUT", "bench.json"), "JSON results file")
	verbose := flag.Bool("v", false, "print the handlers' log lines")
	flag.Parse()

	cfg := bench.Config{Factor: *factor, Instances: *instances, MaxSeedSeconds: *maxSeed}
	var err error
	if cfg.Sizes, err = ints(*sizes); err == nil {
		cfg.Minutes, err = ints(*minutes)
	}
	if err == nil && (cfg.Factor <= 0 || cfg.Instances < 1) {
		err = errors.New("-factor must be above 0 and -instances at least 1")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, cfg, *outFile, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, cfg bench.Config, outFile string, verbose bool) error {
	logf := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	cfg.Logf = logf
	largest := slices.Max(cfg.Sizes)
	// One fleet of the largest size: every run takes its first account-regions.
	f := bench.Fleet(largest, cfg.Instances)
	for _, n := range cfg.Sizes {
		if len(f.Accounts[0].Regions) == 2 && n%2 != 0 {
			return fmt.Errorf("size %d: with an even largest size every size must be even", n)
		}
	}
	opts := emulator.Options{Fleet: f, SimulatedSecondsPerSecond: cfg.Factor,
		Logf: func(format string, args ...any) { logf("setup: "+format, args...) }}
	if verbose {
		opts.Logs = os.Stderr
	}
	started := time.Now()
	h, err := emulator.New(ctx, opts)
	if err != nil {
		return err
	}
	defer h.Close()
	logf("setup: done in %s", time.Since(started).Round(time.Second))
	if w := bench.SeedWaitSeconds(cfg.Factor); float64(w)*cfg.Factor != 15 {
		logf("note: at factor %g the seed's Wait is %d real s = %g simulated s, not 15 (moto waits whole seconds)", cfg.Factor, w, float64(w)*cfg.Factor)
	}
	r := &bench.Runner{H: h, Cfg: cfg}
	results, err := r.Run(ctx)
	if len(results) > 0 {
		fmt.Fprintln(out)
		if perr := bench.PrintTable(out, results); perr != nil && err == nil {
			err = perr
		}
		data, merr := json.MarshalIndent(results, "", "  ")
		if merr != nil {
			return merr
		}
		if werr := os.WriteFile(outFile, append(data, '\n'), 0o600); werr != nil && err == nil {
			err = werr
		}
		logf("results written to %s", outFile)
	}
	return err
}

func ints(list string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
