// Command tracejoin lines a chatbench trace file (chatbench … --trace
// FILE) up with what perf recorded of chatd during the same run, and says
// when the slow deliveries happened: during a checkpoint's bbolt writes,
// during a GC cycle, or neither (and then in bursts or alone).
//
// Record chatd with perf on CLOCK_MONOTONIC, the clock of the trace
// header's monotonic_ns (Linux):
//
//	perf probe -x ./chatd --add 'gcstart=runtime.gcStart'
//	perf probe -x ./chatd --add 'gcmt=runtime.gcMarkTermination'
//	perf record -k mono -e 'syscalls:sys_enter_fdatasync,syscalls:sys_exit_fdatasync,syscalls:sys_enter_pwrite64,probe_chatd:gcstart,probe_chatd:gcmt' -p PID -o sc.data
//	perf script -i sc.data -F tid,time,event,trace --ns > sc.txt
//	go run ./internal/tools/tracejoin -trace trace.txt -perf sc.txt -dbfd N
//
// N is chatd's descriptor of chat.db (ls -l /proc/PID/fd). The uprobes
// are optional: without them the GC lines are empty. A second,
// system-wide record of sched:sched_switch (perf record -k mono -a -e
// sched:sched_switch, its perf script output given after a comma:
// -perf sc.txt,sw.txt) adds the long runs of a kernel thread (-busy,
// kdamond by default: on the VM this was measured on, DAMON's proactive
// reclaim) and the deliveries near them.
package main

import (
	"bufio"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	tracePath := flag.String("trace", "", "chatbench trace file (--trace)")
	perfPath := flag.String("perf", "", "perf script -F tid,time,event,trace --ns output")
	dbfd := flag.Int("dbfd", -1, "chatd's file descriptor of chat.db")
	slow := flag.Duration("slow", 2*time.Millisecond, "a delivery slower than this is slow")
	busy := flag.String("busy", "kdamond", "a kernel thread (comm prefix) whose long runs to report, from sched:sched_switch events")
	flag.Parse()
	if *tracePath == "" || *perfPath == "" || *dbfd < 0 {
		flag.Usage()
		os.Exit(2)
	}
	tf, err := os.Open(*tracePath)
	if err != nil {
		fail(err)
	}
	defer tf.Close()
	rows, mono, err := readTrace(tf)
	if err != nil {
		fail(err)
	}
	var files []io.Reader
	for _, p := range strings.Split(*perfPath, ",") {
		f, err := os.Open(p)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	ev, err := readPerf(io.MultiReader(files...), mono, *dbfd, *busy)
	if err != nil {
		fail(err)
	}
	fmt.Print(analyse(rows, ev, int64(*slow)).String())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tracejoin:", err)
	os.Exit(1)
}

// row is one delivery: due time and latency, ns on the run clock.
type row struct{ due, lat int64 }

var monoRE = regexp.MustCompile(`monotonic_ns=(\d+)`)

// readTrace reads a chatbench trace file: its header's monotonic_ns and
// each record's due and received times.
func readTrace(r io.Reader) ([]row, int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	if !sc.Scan() {
		return nil, 0, errors.New("empty trace file")
	}
	m := monoRE.FindStringSubmatch(sc.Text())
	if m == nil {
		return nil, 0, errors.New("trace header has no monotonic_ns (a chatbench trace made on Linux is needed)")
	}
	mono, _ := strconv.ParseInt(m[1], 10, 64)
	var rows []row
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 9 {
			return nil, 0, fmt.Errorf("trace record %q: want 9 fields", sc.Text())
		}
		due, err1 := strconv.ParseInt(f[2], 10, 64)
		recv, err2 := strconv.ParseInt(f[8], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, 0, fmt.Errorf("trace record %q: bad number", sc.Text())
		}
		rows = append(rows, row{due: due, lat: recv - due})
	}
	return rows, mono, sc.Err()
}

// span is an interval on the run clock.
type span struct{ start, end int64 }

// events is what the perf output says of chatd, on the run clock.
type events struct {
	dbWrites []int64 // bbolt page writes and sync starts and ends (chat.db)
	gc       []span  // from gcStart to the end of mark termination
	busy     []span  // the busy thread's runs (sched_switch in to out)
}

var perfRE = regexp.MustCompile(`^\s*(\d+)\s+(\d+)\.(\d+):\s+\S+:(\S+):\s*(.*)$`)

var switchRE = regexp.MustCompile(`prev_comm=(.*) prev_pid=(\d+) .* ==> next_comm=(.*) next_pid=(\d+)`)

// readPerf reads perf script output (-F tid,time,event,trace --ns),
// placing each event on the run clock (its zero is mono on
// CLOCK_MONOTONIC). The runs of threads whose name starts with busy come
// from sched:sched_switch events (a system-wide record: perf record -a).
func readPerf(r io.Reader, mono int64, dbfd int, busy string) (events, error) {
	var ev events
	syncFD := map[string]int{}   // tid → fd of its fdatasync in flight
	busyIn := map[string]int64{} // pid of a busy thread → when it was switched in
	var gcStart int64 = -1
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := perfRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		secs, _ := strconv.ParseInt(m[2], 10, 64)
		frac := (m[3] + "000000000")[:9]
		ns, _ := strconv.ParseInt(frac, 10, 64)
		t := secs*1e9 + ns - mono
		tid, name, args := m[1], m[4], m[5]
		switch {
		case name == "sys_enter_fdatasync":
			fd := hexArg(args, "fd")
			syncFD[tid] = fd
			if fd == dbfd {
				ev.dbWrites = append(ev.dbWrites, t)
			}
		case name == "sys_exit_fdatasync":
			if fd, ok := syncFD[tid]; ok && fd == dbfd {
				ev.dbWrites = append(ev.dbWrites, t)
			}
			delete(syncFD, tid)
		case name == "sys_enter_pwrite64":
			if hexArg(args, "fd") == dbfd {
				ev.dbWrites = append(ev.dbWrites, t)
			}
		case name == "sched_switch" && busy != "":
			sw := switchRE.FindStringSubmatch(args)
			if sw == nil {
				continue
			}
			if in, ok := busyIn[sw[2]]; ok && strings.HasPrefix(sw[1], busy) {
				ev.busy = append(ev.busy, span{in, t})
				delete(busyIn, sw[2])
			}
			if strings.HasPrefix(sw[3], busy) {
				busyIn[sw[4]] = t
			}
		case strings.HasPrefix(name, "gcstart"):
			gcStart = t
		case strings.HasPrefix(name, "gcmt"):
			if gcStart >= 0 {
				ev.gc = append(ev.gc, span{gcStart, t})
				gcStart = -1
			}
		}
	}
	slices.Sort(ev.dbWrites)
	slices.SortFunc(ev.busy, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	return ev, sc.Err()
}

// hexArg is the value of "name: 0x…" in a perf trace's arguments, or -1.
func hexArg(args, name string) int {
	for _, a := range strings.Split(args, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(a), ": ")
		if ok && k == name {
			n, err := strconv.ParseInt(strings.TrimPrefix(v, "0x"), 16, 64)
			if err == nil {
				return int(n)
			}
		}
	}
	return -1
}

// Checkpoint periods: bbolt writes less than ckptGap apart belong to one
// checkpoint, and a period shorter than ckptMin is not one (a direct
// write, a session's creation). A message is in a period if it was due
// from its start to ckptTail after its end, in a GC cycle if due from
// gcLead before its start to gcTail after its end. Bursts are slow
// messages less than burstGap apart.
const (
	ckptGap  = 60 * int64(time.Millisecond)
	ckptMin  = 1 * int64(time.Millisecond)
	ckptTail = 2 * int64(time.Millisecond)
	gcLead   = 2 * int64(time.Millisecond)
	gcTail   = 1 * int64(time.Millisecond)
	burstGap = 2 * int64(time.Millisecond)
	bigBurst = 20
	// The busy thread's runs less than busyGap apart are one; one of at
	// least busyMin counts, with deliveries due busyPad either side.
	busyGap = 1 * int64(time.Millisecond)
	busyMin = 2 * int64(time.Millisecond)
	busyPad = 3 * int64(time.Millisecond)
)

// group is the deliveries of one kind.
type group struct {
	n, slow int
	p99     int64
}

func newGroup(lats []int64, slow int64) group {
	g := group{n: len(lats)}
	for _, l := range lats {
		if l > slow {
			g.slow++
		}
	}
	if len(lats) > 0 {
		s := slices.Clone(lats)
		slices.Sort(s)
		g.p99 = s[(len(s)-1)*99/100]
	}
	return g
}

func (g group) rate() float64 {
	if g.n == 0 {
		return 0
	}
	return 100 * float64(g.slow) / float64(g.n)
}

// result is what analyse found.
type result struct {
	slow                int64
	all, inCkpt, out    group
	ckpts               []span
	gcCycles            int
	gcMean              time.Duration
	inGC, neither       group
	bursts, inBigBursts int
	burstSizes          []int
	busyRuns            []span // the busy thread's long runs
	busyTime            int64  // all its runs, long or not
	nearBusy, farBusy   group
}

func covered(spans []span, t, lead, tail int64) bool {
	for _, s := range spans {
		if t >= s.start-lead && t <= s.end+tail {
			return true
		}
	}
	return false
}

// analyse sorts the deliveries into checkpoint periods, GC cycles and
// neither, and finds the bursts of slow ones outside checkpoints.
func analyse(rows []row, ev events, slow int64) result {
	var ckpts []span
	for _, t := range ev.dbWrites {
		if n := len(ckpts); n > 0 && t-ckpts[n-1].end < ckptGap {
			ckpts[n-1].end = max(ckpts[n-1].end, t)
		} else {
			ckpts = append(ckpts, span{t, t})
		}
	}
	ckpts = slices.DeleteFunc(ckpts, func(s span) bool { return s.end-s.start < ckptMin })
	r := result{slow: slow, ckpts: ckpts, gcCycles: len(ev.gc)}
	for _, g := range ev.gc {
		r.gcMean += time.Duration(g.end - g.start)
	}
	if len(ev.gc) > 0 {
		r.gcMean /= time.Duration(len(ev.gc))
	}
	var all, in, out, gc, neither []int64
	var slowOut []int64
	for _, d := range rows {
		all = append(all, d.lat)
		if covered(ckpts, d.due, 0, ckptTail) {
			in = append(in, d.lat)
			continue
		}
		out = append(out, d.lat)
		if d.lat > slow {
			slowOut = append(slowOut, d.due)
		}
		if covered(ev.gc, d.due, gcLead, gcTail) {
			gc = append(gc, d.lat)
		} else {
			neither = append(neither, d.lat)
		}
	}
	r.all, r.inCkpt, r.out = newGroup(all, slow), newGroup(in, slow), newGroup(out, slow)
	r.inGC, r.neither = newGroup(gc, slow), newGroup(neither, slow)
	var runs []span
	for _, b := range ev.busy {
		r.busyTime += b.end - b.start
		if n := len(runs); n > 0 && b.start-runs[n-1].end < busyGap {
			runs[n-1].end = max(runs[n-1].end, b.end)
		} else {
			runs = append(runs, b)
		}
	}
	r.busyRuns = slices.DeleteFunc(runs, func(s span) bool { return s.end-s.start < busyMin })
	var near, far []int64
	for _, d := range rows {
		if covered(r.busyRuns, d.due, busyPad, busyPad) {
			near = append(near, d.lat)
		} else {
			far = append(far, d.lat)
		}
	}
	r.nearBusy, r.farBusy = newGroup(near, slow), newGroup(far, slow)
	slices.Sort(slowOut)
	size := 0
	for i, t := range slowOut {
		if i > 0 && t-slowOut[i-1] >= burstGap {
			r.burstSizes = append(r.burstSizes, size)
			size = 0
		}
		size++
	}
	if size > 0 {
		r.burstSizes = append(r.burstSizes, size)
	}
	slices.SortFunc(r.burstSizes, func(a, b int) int { return b - a })
	r.bursts = len(r.burstSizes)
	for _, s := range r.burstSizes {
		if s >= bigBurst {
			r.inBigBursts += s
		}
	}
	return r
}

func (r result) String() string {
	var b strings.Builder
	ms := func(ns int64) string { return strconv.FormatFloat(float64(ns)/1e6, 'f', 2, 64) + " ms" }
	line := func(name string, g group) {
		fmt.Fprintf(&b, "  %-22s %7d  slow %6d (%5.2f%%)  p99 %s\n", name, g.n, g.slow, g.rate(), ms(g.p99))
	}
	var ckptTime int64
	for _, s := range r.ckpts {
		ckptTime += s.end - s.start
	}
	fmt.Fprintf(&b, "deliveries (slow: over %v)\n", time.Duration(r.slow))
	line("all", r.all)
	fmt.Fprintf(&b, "checkpoints: %d, %s of bbolt writing in all\n", len(r.ckpts), ms(ckptTime))
	line("during a checkpoint", r.inCkpt)
	line("outside checkpoints", r.out)
	fmt.Fprintf(&b, "GC cycles: %d, %v each on average (outside checkpoints:)\n", r.gcCycles, r.gcMean.Round(10*time.Microsecond))
	line("during a GC cycle", r.inGC)
	line("neither", r.neither)
	if r.busyTime > 0 {
		var long []string
		for _, s := range r.busyRuns {
			long = append(long, ms(s.end-s.start))
		}
		fmt.Fprintf(&b, "the busy thread: %s on a CPU in all; %d runs of %v or more %v\n", ms(r.busyTime), len(r.busyRuns), time.Duration(busyMin), long)
		line("near one (±3 ms)", r.nearBusy)
		line("not near one", r.farBusy)
	}
	top := r.burstSizes[:min(10, len(r.burstSizes))]
	fmt.Fprintf(&b, "slow deliveries outside checkpoints: %d bursts (less than %v apart), largest %v; %d in bursts of %d or more\n",
		r.bursts, time.Duration(burstGap), top, r.inBigBursts, bigBurst)
	return b.String()
}
