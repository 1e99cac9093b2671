package bench

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMostInWindow(t *testing.T) {
	ms := int64(time.Millisecond)
	period, w := 100*ms, 5*ms
	tests := []struct {
		name string
		ts   []int64
		want int
	}{
		{name: "none", ts: nil, want: 0},
		{name: "one", ts: []int64{7 * ms}, want: 1},
		{name: "same phase of every cycle", ts: []int64{62 * ms, 162 * ms, 1262*ms + ms, 5062 * ms, 9064 * ms}, want: 5},
		{name: "window wraps the cycle's end", ts: []int64{98 * ms, 201 * ms, 399 * ms, 50 * ms}, want: 3},
		{name: "just outside the window", ts: []int64{10 * ms, 115 * ms}, want: 1},
		{name: "spread evenly", ts: []int64{0, 110 * ms, 220 * ms, 330 * ms, 440 * ms, 550 * ms, 660 * ms, 770 * ms, 880 * ms, 990 * ms}, want: 1},
		{name: "negative clock", ts: []int64{-38 * ms, 62 * ms}, want: 2},
	}
	for _, tt := range tests {
		if got := mostInWindow(tt.ts, period, w); got != tt.want {
			t.Errorf("%s: mostInWindow = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestStallSamplerReport(t *testing.T) {
	s := newStallSampler(time.Millisecond)
	now := int64(0)
	for i := 0; i < 100; i++ {
		now += int64(time.Millisecond)
		s.wake(now, 50*time.Microsecond)
	}
	for _, l := range []time.Duration{1500 * time.Microsecond, 1500 * time.Microsecond, 1500 * time.Microsecond} {
		now += int64(l)
		s.wake(now, l)
	}
	s.wake(1062*int64(time.Millisecond), 6*time.Millisecond)
	s.wake(2063*int64(time.Millisecond), 6*time.Millisecond)
	s.span = time.Second
	r := s.report()
	if r.Wakes != 105 || r.Stalls1ms != 5 || r.Stalls5ms != 2 || r.Long != 2 || r.Aligned != 2 {
		t.Fatalf("report %+v: want 105 wakes, 5 stalls ≥1ms, 2 ≥5ms, 2 long, both aligned", r)
	}
	if r.StalledPct != 1.6 { // (3×1.5 + 2×6) ms of 1 s, truncated to a tenth
		t.Errorf("stalled %v%%, want 1.6", r.StalledPct)
	}
	if r.Lateness.Count != 105 || r.Lateness.P50US != 50 || r.Lateness.MaxUS < 5990 {
		t.Errorf("lateness %+v", r.Lateness)
	}
	if r.TickUS != 1000 {
		t.Errorf("tick %d µs", r.TickUS)
	}
}

func TestProbeNotes(t *testing.T) {
	aligned := &StallReport{Long: 10, Aligned: 9, Stalls5ms: 8}
	idle := &StallReport{Long: 0}
	r := &ProbeReport{Stalls: idle, Disk: &DiskReport{Stalls: aligned}, stallsAll: []*StallReport{idle, aligned}}
	r.addNotes()
	if len(r.Notes) != 2 || !strings.Contains(r.Notes[0], "9 of the 10 stalls") || !strings.Contains(r.Notes[1], "8 stalls of 5 ms or more against 0") {
		t.Fatalf("notes %q", r.Notes)
	}
	spread := &StallReport{Long: 10, Aligned: 2, Stalls5ms: 1}
	r = &ProbeReport{Stalls: spread, stallsAll: []*StallReport{spread}}
	r.addNotes()
	if len(r.Notes) != 0 {
		t.Fatalf("spread stalls gave notes %q", r.Notes)
	}
	few := &StallReport{Long: 3, Aligned: 3}
	r = &ProbeReport{Stalls: few, stallsAll: []*StallReport{few}}
	r.addNotes()
	if len(r.Notes) != 0 {
		t.Fatalf("three stalls are too few to call a pattern, got %q", r.Notes)
	}
}

func TestProbeDisk(t *testing.T) {
	dir := t.TempDir()
	rep, err := RunProbe(context.Background(), Probe{Parts: []string{"disk"}, Duration: 300 * time.Millisecond, Dir: dir, Rate: 2000, Record: 100})
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Disk
	if d == nil || rep.Stalls != nil || rep.Loopback != nil {
		t.Fatalf("parts run: %+v", rep)
	}
	if d.Records != 600 || d.Durable.Count != 600 {
		t.Errorf("%d records, %d durable; want every one of the 600 scheduled", d.Records, d.Durable.Count)
	}
	if d.Batches < 1 || d.Batches > 600 || d.Sync.Count != d.Batches {
		t.Errorf("%d batches, %d syncs", d.Batches, d.Sync.Count)
	}
	if d.Durable.P50US <= 0 || d.Sync.P50US <= 0 || d.SyncsPerS <= 0 {
		t.Errorf("no time measured: %+v", d)
	}
	if d.Stalls == nil || d.Stalls.Wakes == 0 {
		t.Errorf("no stall sampler beside the disk load: %+v", d.Stalls)
	}
	if filepath.Dir(d.File) != dir {
		t.Errorf("scratch file %s not in %s", d.File, dir)
	}
	if _, err := os.Stat(d.File); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("scratch file left behind: %v", err)
	}
	if rep.Params.Rate != 2000 || rep.Params.Depth != 1 || rep.Params.Record != 100 || rep.Params.Dir != dir {
		t.Errorf("params %+v", rep.Params)
	}
}

func TestProbeDiskDepth(t *testing.T) {
	rep, err := RunProbe(context.Background(), Probe{Parts: []string{"disk"}, Duration: 200 * time.Millisecond, Dir: t.TempDir(), Rate: 5000, Depth: 3})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Disk.Records != 1000 || rep.Disk.Durable.Count != 1000 {
		t.Fatalf("depth 3: %d records, %d durable; want 1000", rep.Disk.Records, rep.Disk.Durable.Count)
	}
}

func TestProbeStallsAndLoopback(t *testing.T) {
	rep, err := RunProbe(context.Background(), Probe{Parts: []string{"stalls", "loopback"}, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Disk != nil {
		t.Error("disk part ran though not asked for")
	}
	// A 1 ms tick for 300 ms: about 300 wakes, fewer when stalls swallow
	// ticks (a few more when the stop is seen late: 302 on a loaded box).
	if s := rep.Stalls; s == nil || s.Wakes < 30 || s.Wakes > 310 || s.Lateness.Count != s.Wakes {
		t.Errorf("stalls %+v", rep.Stalls)
	}
	if l := rep.Loopback; l == nil || l.RoundTrip.Count < 30 || l.RoundTrip.Count > 310 || l.RoundTrip.P50US <= 0 {
		t.Errorf("loopback %+v", rep.Loopback)
	}
	if rep.Host.NumCPU < 1 || rep.Host.GOMAXPROCS < 1 || rep.Host.OS == "" {
		t.Errorf("host %+v", rep.Host)
	}
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"chatbench probe: done", "nothing else", "round trip"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestProbeInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	t0 := time.Now()
	rep, err := RunProbe(ctx, Probe{Parts: []string{"stalls", "loopback"}, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted || rep.Loopback != nil {
		t.Errorf("interrupted %v, loopback %+v: the run should stop in its first part", rep.Interrupted, rep.Loopback)
	}
	if el := time.Since(t0); el > 30*time.Second {
		t.Errorf("took %v to stop", el)
	}
}

func TestProbeBadParams(t *testing.T) {
	tests := []struct {
		p    Probe
		want string
	}{
		{Probe{Parts: []string{"cpu"}}, `unknown part "cpu"`},
		{Probe{Depth: 100}, "--depth"},
		{Probe{Rate: -1}, "--rate"},
		{Probe{Tick: time.Microsecond}, "--tick"},
		{Probe{Record: 2 << 20}, "--record"},
		{Probe{Parts: []string{"disk"}, Dir: "/nonexistent/chatbench-probe", Duration: time.Millisecond}, "is not a folder"},
	}
	for _, tt := range tests {
		_, err := RunProbe(context.Background(), tt.p)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want %q", tt.p, err, tt.want)
		}
	}
}

// TestJournalProbeWriteError: a write that fails ends the disk part with
// that error, without waiting out the schedule or leaving the pacer stuck.
func TestJournalProbeWriteError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.wal")
	if err := os.WriteFile(path, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path) // read-only: every write fails
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t0 := time.Now()
	_, err = journalProbe(context.Background(), f, 1000, time.Minute, 1, 100, 1<<20)
	if err == nil || !strings.Contains(err.Error(), "probe: disk:") {
		t.Fatalf("error %v, want the write's", err)
	}
	if el := time.Since(t0); el > 30*time.Second {
		t.Errorf("took %v: the failure waited for the schedule", el)
	}
}
