package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestJoin builds a run of 1,000 deliveries 1 ms apart with a checkpoint
// (bbolt writes on fd 8) from 100 to 200 ms, a GC cycle from 500 to 510
// ms and a burst of slow deliveries at 800–819 ms, and checks that each
// slow delivery is put where it happened, on the run clock given by the
// header's monotonic_ns.
func TestJoin(t *testing.T) {
	const mono = 5_000_000_000 // the run clock's zero on CLOCK_MONOTONIC
	var tr strings.Builder
	tr.WriteString("# chatbench trace: session seq due written decoded commit_start commit_end fanned_out received (ns on the run clock; zero at unix_ns=1 monotonic_ns=5000000000)\n")
	ms := int64(1_000_000)
	for i := range int64(1000) {
		due := i * ms
		lat := 400 * int64(1000) // 0.4 ms
		switch {
		case due >= 100*ms && due < 200*ms && i%4 == 0: // 25 slow in the checkpoint
			lat = 5 * ms
		case due >= 500*ms && due < 510*ms: // 10 slow in the GC cycle
			lat = 3 * ms
		case due >= 800*ms && due < 820*ms: // a burst of 20
			lat = 4 * ms
		case i == 950: // one alone
			lat = 9 * ms
		}
		fmt.Fprintf(&tr, "1 %d %d %d %d %d %d %d %d\n", i+1, due, due, due, due, due, due, due+lat)
	}
	at := func(runNS int64) string {
		n := mono + runNS
		return fmt.Sprintf("%d.%09d", n/1e9, n%1e9)
	}
	var pf strings.Builder
	for t := 100 * ms; t <= 200*ms; t += 10 * ms {
		fmt.Fprintf(&pf, " 42 %s:  syscalls:sys_enter_pwrite64: fd: 0x00000008, buf: 0x1, count: 0x1000, pos: 0x0\n", at(t))
	}
	fmt.Fprintf(&pf, " 42 %s: syscalls:sys_enter_fdatasync: fd: 0x00000008\n", at(199*ms))
	fmt.Fprintf(&pf, " 42 %s:  syscalls:sys_exit_fdatasync: 0x0\n", at(200*ms))
	// The WAL's syncs (fd 9) all along are not checkpoint writes.
	for t := int64(0); t < 1000*ms; t += 50 * ms {
		fmt.Fprintf(&pf, " 43 %s:  syscalls:sys_enter_pwrite64: fd: 0x00000009, buf: 0x1, count: 0x100, pos: 0x0\n", at(t))
		fmt.Fprintf(&pf, " 43 %s: syscalls:sys_enter_fdatasync: fd: 0x00000009\n", at(t))
		fmt.Fprintf(&pf, " 43 %s:  syscalls:sys_exit_fdatasync: 0x0\n", at(t+ms/5))
	}
	// kdamond runs 805–815 ms in two stretches 0.5 ms apart (one run),
	// and 0.5 ms at 300 ms (too short to count).
	sw := func(t int64, prev, prevPID, next, nextPID string) {
		fmt.Fprintf(&pf, " 0 %s: sched:sched_switch: prev_comm=%s prev_pid=%s prev_prio=120 prev_state=S ==> next_comm=%s next_pid=%s next_prio=120\n",
			at(t), prev, prevPID, next, nextPID)
	}
	sw(805*ms, "chatd", "7", "kdamond.0", "77")
	sw(810*ms, "kdamond.0", "77", "swapper/1", "0")
	sw(810*ms+ms/2, "swapper/1", "0", "kdamond.0", "77")
	sw(815*ms, "kdamond.0", "77", "chatbench", "9")
	sw(300*ms, "chatd", "7", "kdamond.0", "77")
	sw(300*ms+ms/2, "kdamond.0", "77", "chatd", "7")
	fmt.Fprintf(&pf, " 44 %s: probe_chatd:gcstart: (42cbe0)\n", at(502*ms))
	fmt.Fprintf(&pf, " 44 %s: probe_chatd:gcmt: (42df00)\n", at(508*ms))

	rows, m, err := readTrace(strings.NewReader(tr.String()))
	if err != nil || m != mono || len(rows) != 1000 {
		t.Fatalf("readTrace: %d rows, mono %d, %v", len(rows), m, err)
	}
	ev, err := readPerf(strings.NewReader(pf.String()), m, 8, "kdamond")
	if err != nil {
		t.Fatal(err)
	}
	r := analyse(rows, ev, 2*ms)
	if len(r.ckpts) != 1 || r.ckpts[0] != (span{100 * ms, 200 * ms}) {
		t.Errorf("checkpoints %v, want one from 100 to 200 ms", r.ckpts)
	}
	// Due 100..202 ms is during the checkpoint (2 ms tail): 103 deliveries.
	if r.inCkpt.n != 103 || r.inCkpt.slow != 25 {
		t.Errorf("during the checkpoint: %+v, want 103 with 25 slow", r.inCkpt)
	}
	if r.all.slow != 25+10+20+1 || r.out.slow != 31 {
		t.Errorf("slow in all %d, outside checkpoints %d; want 56 and 31", r.all.slow, r.out.slow)
	}
	// The cycle (502–508 ms) covers deliveries due 500–509 ms.
	if r.gcCycles != 1 || r.inGC.n != 10 || r.inGC.slow != 10 {
		t.Errorf("GC: %d cycles, %+v; want one covering 10 slow deliveries", r.gcCycles, r.inGC)
	}
	if r.neither.slow != 21 {
		t.Errorf("neither: %+v, want 21 slow", r.neither)
	}
	// Outside checkpoints: the GC's 10, the burst's 20, the lone one.
	if r.bursts != 3 || r.inBigBursts != 20 || r.burstSizes[0] != 20 {
		t.Errorf("bursts %d %v (%d in big ones), want 3 with the largest of 20", r.bursts, r.burstSizes, r.inBigBursts)
	}
	// 5 + 4.5 + 0.5 ms on a CPU; deliveries due 802–818 ms are near the
	// long run: 17, all in the burst, so all slow.
	if len(r.busyRuns) != 1 || r.busyRuns[0] != (span{805 * ms, 815 * ms}) || r.busyTime != 10*ms {
		t.Errorf("kdamond runs %v (%d ns in all), want one of 805–815 ms and 10 ms in all", r.busyRuns, r.busyTime)
	}
	if r.nearBusy.n != 17 || r.nearBusy.slow != 17 || r.farBusy.slow != 56-17 {
		t.Errorf("near kdamond: %+v, not near: %+v; want 17 slow near, 39 slow elsewhere", r.nearBusy, r.farBusy)
	}
	if s := r.String(); !strings.Contains(s, "during a checkpoint") || !strings.Contains(s, "bursts") || !strings.Contains(s, "near one") {
		t.Errorf("report:\n%s", s)
	}
}

// TestTraceWithoutMonotonic refuses a trace whose header cannot be
// placed on perf's clock.
func TestTraceWithoutMonotonic(t *testing.T) {
	_, _, err := readTrace(strings.NewReader("# chatbench trace: session seq (ns on the run clock; zero at unix_ns=1)\n"))
	if err == nil || !strings.Contains(err.Error(), "monotonic_ns") {
		t.Fatalf("err = %v, want one about monotonic_ns", err)
	}
}
