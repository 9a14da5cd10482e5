package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ec2patch/ec2patch/infra/app"
	"github.com/ec2patch/ec2patch/params"
)

func TestNextRunsOfTheDevCampaigns(t *testing.T) {
	p, err := app.LoadParams(params.Files, "dev")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := write(&b, p, time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"campaign     schedule                                     next runs (local time, UTC)\n" +
		"monthly      Patch Tuesday + 2 at 03:00 America/New_York  2026-12-10 03:00 EST (08:00 UTC)  " +
		"2027-01-14 03:00 EST (08:00 UTC)  2027-02-11 03:00 EST (08:00 UTC)\n" +
		"weekly-scan  cron(0 4 ? * SUN *) Europe/Berlin            disabled\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestUTCDateShownWhenItDiffers(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	local := time.Date(2026, 12, 10, 3, 0, 0, 0, tokyo)
	if got := formatRun(local, local.UTC()); got != "2026-12-10 03:00 JST (2026-12-09 18:00 UTC)" {
		t.Errorf("got %q", got)
	}
}
