// Command nextruns prints the next run times of each campaign schedule of an
// environment, on the schedule's clock and in UTC, so an operator can check
// them before deploying. `make synth` runs it after synthesizing.
//
//	go run ./infra/cmd/nextruns -env dev
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ec2patch/ec2patch/infra/app"
	"github.com/ec2patch/ec2patch/internal/config"
	"github.com/ec2patch/ec2patch/params"
)

// runsShown is how many runs of each schedule are printed.
const runsShown = 3

func main() {
	env := flag.String("env", "dev", "environment: params/<env>.json")
	flag.Parse()
	p, err := app.LoadParams(params.Files, *env)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nextruns:", err)
		os.Exit(1)
	}
	if err := write(os.Stdout, p, time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, "nextruns:", err)
		os.Exit(1)
	}
}

// write prints one line per campaign schedule: its name, its rule, and its
// next runs after now (or "disabled").
func write(w io.Writer, p config.Params, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "campaign\tschedule\tnext runs (local time, UTC)\n")
	n := 0
	for _, c := range p.Campaigns {
		if c.Schedule == nil {
			continue
		}
		n++
		if !c.Schedule.IsEnabled() {
			fmt.Fprintf(tw, "%s\t%s\tdisabled\n", c.Name, c.Schedule)
			continue
		}
		runs, err := c.Schedule.Next(runsShown, now)
		if err != nil {
			return fmt.Errorf("campaign %s: %w", c.Name, err)
		}
		var shown []string
		for _, r := range runs {
			shown = append(shown, formatRun(r.Local, r.UTC))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, c.Schedule, strings.Join(shown, "  "))
	}
	if n == 0 {
		fmt.Fprintf(tw, "(no campaign has a schedule)\t\t\n")
	}
	return tw.Flush()
}

// formatRun is "2026-12-10 03:00 EST (08:00 UTC)", with the UTC date when
// it differs from the local one.
func formatRun(local, utc time.Time) string {
	u := utc.Format("15:04")
	if utc.Format("2006-01-02") != local.Format("2006-01-02") {
		u = utc.Format("2006-01-02 15:04")
	}
	return fmt.Sprintf("%s (%s UTC)", local.Format("2006-01-02 15:04 MST"), u)
}
