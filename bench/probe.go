package bench

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Probe measures what the host itself allows, with no chatd involved, so
// that a latency figure can be told apart from the floor the machine puts
// under it:
//
//   - stalls: how late a thread that sleeps Tick at a time wakes up, with
//     nothing else running. A thread that cannot run for milliseconds when
//     it should is a stall of the whole host (a hypervisor descheduling
//     the vCPU, a CPU quota, a noisy neighbour); every message in flight
//     at that moment is that late, whatever the server does.
//   - disk: an ideal group-commit journal in Dir: records of Record bytes
//     arriving at Rate per second (open loop), each batch written in place
//     and made durable with fdatasync, Depth syncs in flight. Its arrival
//     → durable latency is the floor of any server that acknowledges a
//     message only once it is on this disk. The stall sampler runs beside
//     it, because on virtual machines the I/O itself can stall the host.
//   - loopback: the round trip of a 64-byte message over TCP on 127.0.0.1
//     between two goroutines, 1,000 times a second: the floor of a
//     request and its reply on this host's network stack.
//
// Each part runs for Duration, one after the other.
type Probe struct {
	Parts    []string      // of ProbeParts; empty means all, in that order
	Duration time.Duration // per part; zero means 5s
	Dir      string        // folder for the disk part's scratch file; empty means the working directory
	Rate     float64       // disk records per second; zero means 10,000
	Depth    int           // disk syncs in flight; zero means 1
	Record   int           // disk record bytes; zero means 300 (a short text message as chatd's WAL holds it)
	Tick     time.Duration // stall sampler's sleep; zero means 1ms
	// StallSampler runs the stall sampler in a process of its own (see
	// Options.StallSampler); empty samples on a thread of this process.
	StallSampler []string

	Progress    io.Writer // live status line; nil prints nothing
	ProgressTTY bool
}

// ProbeParts are the parts Probe runs, in order.
var ProbeParts = []string{"stalls", "disk", "loopback"}

// ProbeReport is what Probe measured. Its JSON form is one line.
type ProbeReport struct {
	Scenario    string         `json:"scenario"` // "probe"
	Params      ProbeParams    `json:"params"`
	Started     time.Time      `json:"started"`
	ElapsedS    float64        `json:"elapsed_s"`
	Interrupted bool           `json:"interrupted"`
	Host        HostReport     `json:"host"`
	Stalls      *StallReport   `json:"stalls,omitempty"`
	Disk        *DiskReport    `json:"disk,omitempty"`
	Loopback    *LoopReport    `json:"loopback,omitempty"`
	Notes       []string       `json:"notes,omitempty"`
	stallsAll   []*StallReport // every sampler that ran, for the notes
}

// ProbeParams are the settings a probe used.
type ProbeParams struct {
	Parts     []string `json:"parts"`
	DurationS float64  `json:"duration_s"`
	Dir       string   `json:"dir,omitempty"`
	Rate      float64  `json:"rate,omitempty"`
	Depth     int      `json:"depth,omitempty"`
	Record    int      `json:"record,omitempty"`
	TickUS    int64    `json:"tick_us"`
}

// HostReport describes the machine.
type HostReport struct {
	OS         string  `json:"os"`
	Arch       string  `json:"arch"`
	Kernel     string  `json:"kernel,omitempty"`
	NumCPU     int     `json:"num_cpu"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	LoadBefore float64 `json:"load_before,omitempty"`
	LoadAfter  float64 `json:"load_after,omitempty"`
}

// StallReport is one run of the stall sampler.
type StallReport struct {
	TickUS   int64   `json:"tick_us"`
	Wakes    int64   `json:"wakes"`
	Lateness Latency `json:"lateness"` // wake-up time minus the time asked for
	// Stalls1ms and Stalls5ms count wake-ups at least that late;
	// StalledPct is the share of the run they cover.
	Stalls1ms  int64   `json:"stalls_1ms"`
	Stalls5ms  int64   `json:"stalls_5ms"`
	StalledPct float64 `json:"stalled_pct"`
	// Of the stalls of 2 ms or more (Long), how many ended within the same
	// 5 ms of a 100 ms cycle (Aligned): the mark of a CPU quota enforced
	// per 100 ms period (Linux CFS bandwidth control, as hypervisors and
	// container hosts use it), which stops every thread of the machine
	// until the next period begins. Spread evenly, a 5 ms window would
	// hold about 5% of them.
	Long    int64 `json:"long"`
	Aligned int64 `json:"aligned"`
}

// DiskReport is the disk part.
type DiskReport struct {
	File      string       `json:"file"`
	Records   int64        `json:"records"`
	Batches   int64        `json:"batches"`
	SyncsPerS float64      `json:"syncs_per_s"`
	Durable   Latency      `json:"durable"`   // a record's intended arrival → its batch durable (and every earlier one)
	Sync      Latency      `json:"fdatasync"` // one sync call
	Stalls    *StallReport `json:"stalls"`    // the stall sampler during the disk load
}

// LoopReport is the loopback part.
type LoopReport struct {
	RoundTrip Latency `json:"round_trip"`
}

func (p *Probe) fill() error {
	if len(p.Parts) == 0 {
		p.Parts = slices.Clone(ProbeParts)
	}
	for _, part := range p.Parts {
		if !slices.Contains(ProbeParts, part) {
			return errors.New("probe: unknown part " + strconv.Quote(part) + " (parts: " + strings.Join(ProbeParts, ", ") + ")")
		}
	}
	if p.Duration == 0 {
		p.Duration = 5 * time.Second
	}
	if p.Rate == 0 {
		p.Rate = 10000
	}
	if p.Depth == 0 {
		p.Depth = 1
	}
	if p.Record == 0 {
		p.Record = 300
	}
	if p.Tick == 0 {
		p.Tick = time.Millisecond
	}
	switch {
	case p.Duration < 0 || p.Duration > time.Hour:
		return errors.New("probe: --duration must be positive and at most 1h")
	case p.Rate < 0 || p.Rate > 1e6:
		return errors.New("probe: --rate must be positive and at most 1,000,000 records/s")
	case p.Depth < 1 || p.Depth > 64:
		return errors.New("probe: --depth must be 1 to 64")
	case p.Record < 1 || p.Record > 1<<20:
		return errors.New("probe: --record must be 1 byte to 1 MiB")
	case p.Tick < 100*time.Microsecond || p.Tick > time.Second:
		return errors.New("probe: --tick must be 100µs to 1s")
	}
	return nil
}

// RunProbe runs p. Canceling ctx stops it early; the report then has
// Interrupted set and holds what was measured. An error means a part
// could not run (the disk part's folder is missing, say).
func RunProbe(ctx context.Context, p Probe) (*ProbeReport, error) {
	if err := p.fill(); err != nil {
		return nil, err
	}
	started := time.Now()
	rep := &ProbeReport{Scenario: "probe", Started: started.UTC(),
		Params: ProbeParams{Parts: p.Parts, DurationS: p.Duration.Seconds(), TickUS: p.Tick.Microseconds()}}
	if slices.Contains(p.Parts, "disk") {
		rep.Params.Dir, rep.Params.Rate, rep.Params.Depth, rep.Params.Record = p.Dir, p.Rate, p.Depth, p.Record
	}
	rep.Host = HostReport{OS: runtime.GOOS, Arch: runtime.GOARCH, Kernel: kernelRelease(),
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	rep.Host.LoadBefore, _ = loadAvg()

	prog := newProgress(p.Progress, p.ProgressTTY, 500*time.Millisecond)
	go prog.run()
	defer prog.close()
	show := func(part string, from time.Time) {
		prog.set(part, func(b []byte) []byte {
			b = appendSeconds(b, time.Since(from))
			b = append(b, " of "...)
			return appendSeconds(b, p.Duration)
		})
	}

	var err error
	for _, part := range p.Parts {
		if ctx.Err() != nil {
			break
		}
		show(part, time.Now())
		switch part {
		case "stalls":
			rep.Stalls, err = sampleStalls(ctx, p.StallSampler, p.Tick, p.Duration)
			rep.stallsAll = append(rep.stallsAll, rep.Stalls)
		case "disk":
			rep.Disk, err = p.runDisk(ctx)
			if rep.Disk != nil {
				rep.stallsAll = append(rep.stallsAll, rep.Disk.Stalls)
			}
		case "loopback":
			rep.Loopback, err = runLoopback(ctx, p.Duration)
		}
		if err != nil {
			return nil, err
		}
	}
	rep.Interrupted = ctx.Err() != nil
	rep.ElapsedS = time.Since(started).Seconds()
	rep.Host.LoadAfter, _ = loadAvg()
	rep.addNotes()
	return rep, nil
}

// ---- stalls

// stallSampler turns wake-up lateness into a StallReport.
type stallSampler struct {
	tick    time.Duration
	lat     *Recorder
	wakes   int64
	n1, n5  int64
	stalled time.Duration
	ends    []int64 // monotonic end (ns) of each stall of 2 ms or more
	span    time.Duration
}

func newStallSampler(tick time.Duration) *stallSampler {
	return &stallSampler{tick: tick, lat: NewRecorder()}
}

// wake records one wake-up at monotonic time now (ns), late after the
// time asked for.
func (s *stallSampler) wake(now int64, late time.Duration) {
	s.wakes++
	s.lat.Record(0, late)
	if late >= time.Millisecond {
		s.n1++
		s.stalled += late
	}
	if late >= 5*time.Millisecond {
		s.n5++
	}
	if late >= 2*time.Millisecond {
		s.ends = append(s.ends, now)
	}
}

// quotaPattern reports whether most long stalls (at least 5) ended at the
// same point of a 100 ms cycle.
func (r *StallReport) quotaPattern() bool { return r.Long >= 5 && 2*r.Aligned >= r.Long }

// quotaPeriod is the period a CPU quota is most often enforced over: the
// Linux default cpu.cfs_period_us, which cgroup-based hypervisors and
// container runtimes keep.
const quotaPeriod = 100 * time.Millisecond

func (s *stallSampler) report() *StallReport {
	r := &StallReport{TickUS: s.tick.Microseconds(), Wakes: s.wakes, Lateness: s.lat.Summary(),
		Stalls1ms: s.n1, Stalls5ms: s.n5, Long: int64(len(s.ends))}
	if s.span > 0 {
		r.StalledPct = float64(int64(1000*s.stalled/s.span)) / 10
	}
	r.Aligned = int64(mostInWindow(s.ends, int64(quotaPeriod), int64(5*time.Millisecond)))
	return r
}

// mostInWindow returns the largest number of ts that fall within one
// window of width w of a cycle of the given period (ts taken mod period,
// the window wrapping around the cycle's end).
func mostInWindow(ts []int64, period, w int64) int {
	if len(ts) == 0 {
		return 0
	}
	ph := make([]int64, 0, 2*len(ts))
	for _, t := range ts {
		ph = append(ph, ((t%period)+period)%period)
	}
	slices.Sort(ph)
	n := len(ph)
	for i := 0; i < n; i++ {
		ph = append(ph, ph[i]+period) // the window may wrap
	}
	best, j := 0, 0
	for i := 0; i < n; i++ {
		for j < len(ph) && ph[j] < ph[i]+w {
			j++
		}
		best = max(best, j-i)
	}
	return best
}

// sampleStalls runs the stall sampler (see startHostStalls) for d, or
// until ctx ends.
func sampleStalls(ctx context.Context, argv []string, tick, d time.Duration) (*StallReport, error) {
	stop := startHostStalls(argv, tick)
	sleepCtx(ctx, d)
	return stop()
}

// startStalls starts the stall sampler on a thread of its own; the
// function it returns stops it and reports.
func startStalls(tick time.Duration) (stop func() *StallReport) {
	s := newStallSampler(tick)
	var quit atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		start := probeNow()
		next := start + int64(tick)
		for !quit.Load() {
			sleepUntilMono(next)
			now := probeNow()
			s.wake(now, time.Duration(now-next))
			next += int64(tick)
			if next <= now { // a stall: do not pile up the ticks it swallowed
				next = now + int64(tick)
			}
		}
		s.span = time.Duration(probeNow() - start)
	}()
	return func() *StallReport {
		quit.Store(true)
		<-done
		return s.report()
	}
}

// ---- disk

func (p *Probe) runDisk(ctx context.Context) (*DiskReport, error) {
	dir := p.Dir
	if dir == "" {
		dir = "."
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, errors.New("probe: disk: " + dir + " is not a folder (--dir)")
	}
	path := filepath.Join(dir, "chatbench-probe-"+strconv.Itoa(os.Getpid())+".wal")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, errors.New("probe: disk: " + err.Error())
	}
	defer os.Remove(path)
	defer f.Close()

	// Written in place over a file whose blocks exist, as chatd's WAL is
	// (an append would also sync the file's size with every batch).
	size := int64(p.Rate*p.Duration.Seconds()*float64(p.Record)) + 1<<20
	size = min(size, 64<<20)
	zero := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(zero)) {
		if _, err := f.WriteAt(zero, off); err != nil {
			return nil, errors.New("probe: disk: " + err.Error())
		}
	}
	if err := f.Sync(); err != nil {
		return nil, errors.New("probe: disk: " + err.Error())
	}

	var stalls *StallReport
	var serr error
	stallsDone := make(chan struct{})
	go func() {
		stalls, serr = sampleStalls(ctx, p.StallSampler, p.Tick, p.Duration)
		close(stallsDone)
	}()
	rep, err := journalProbe(ctx, f, p.Rate, p.Duration, p.Depth, p.Record, size)
	<-stallsDone
	if err == nil {
		err = serr
	}
	if err != nil {
		return nil, err
	}
	rep.File, rep.Stalls = path, stalls
	return rep, nil
}

// journalProbe is the ideal group-commit journal: arrivals at rate for d,
// open loop; whatever arrived while the previous batch was being written
// is the next batch; depth syncs in flight, completed in order. It writes
// in place over the first size bytes of f, wrapping around.
func journalProbe(ctx context.Context, f *os.File, rate float64, d time.Duration, depth, rec int, size int64) (*DiskReport, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	clk := newClock()
	total := streamTotal(rate, d)
	arrivals := make(chan int64, min(total, 1<<20)+1)
	go func() {
		defer close(arrivals)
		p := newPacer(clk.now()+int64(10*time.Millisecond), rate, d, 0, 1)
		p.run(ctx, clk, func(_, at int64) { arrivals <- at })
	}()

	durable, syncs := NewRecorder(), NewRecorder()
	var failMu sync.Mutex // guards failed
	var failed error
	fail := func(err error) {
		failMu.Lock()
		if failed == nil {
			failed = err
		}
		failMu.Unlock()
	}
	var records, batches atomic.Int64
	slots := make(chan struct{}, depth)
	prev := make(chan struct{})
	close(prev)
	var wg sync.WaitGroup
	buf := make([]byte, 0, 1<<20)
	var off int64
	t0 := time.Now()
	for first := range arrivals {
		ats := []int64{first}
	gather:
		for {
			select {
			case at, ok := <-arrivals:
				if !ok {
					break gather
				}
				ats = append(ats, at)
			default:
				break gather
			}
		}
		slots <- struct{}{}
		n := len(ats) * rec
		if cap(buf) < n {
			buf = make([]byte, 0, n)
		}
		buf = buf[:n]
		if off+int64(n) > size {
			off = 0
		}
		if _, err := f.WriteAt(buf, off); err != nil {
			fail(err)
			<-slots
			cancel()
			for range arrivals { // let the pacer finish
			}
			break
		}
		off += int64(n)
		batches.Add(1)
		done, before := make(chan struct{}), prev
		prev = done
		wg.Go(func() {
			s0 := time.Now()
			if err := datasync(f); err != nil {
				fail(errors.New("fdatasync: " + err.Error()))
			}
			syncs.Record(0, time.Since(s0))
			<-slots
			<-before // a batch is done only once every earlier one is
			now := clk.now()
			for _, at := range ats {
				durable.Record(0, time.Duration(now-at))
			}
			records.Add(int64(len(ats)))
			close(done)
		})
	}
	wg.Wait() // every sync is over before f may be closed
	if failed != nil {
		return nil, errors.New("probe: disk: " + failed.Error())
	}
	rep := &DiskReport{Records: records.Load(), Batches: batches.Load(), Durable: durable.Summary(), Sync: syncs.Summary()}
	if el := time.Since(t0).Seconds(); el > 0 {
		rep.SyncsPerS = float64(int64(float64(rep.Batches)/el*10)) / 10
	}
	return rep, nil
}

// ---- loopback

// loopInterval spaces the loopback round trips.
const loopInterval = time.Millisecond

func runLoopback(ctx context.Context, d time.Duration) (*LoopReport, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, errors.New("probe: loopback: " + err.Error())
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c) // echo until the client closes
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		return nil, errors.New("probe: loopback: " + err.Error())
	}
	defer c.Close()
	rtt := NewRecorder()
	msg, back := make([]byte, 64), make([]byte, 64)
	sl := newSleeper()
	defer sl.close()
	clk := newClock()
	until := clk.now() + int64(d)
	for next := clk.now(); next < until; next += int64(loopInterval) {
		if !sl.until(ctx, clk, next) {
			break
		}
		t0 := time.Now()
		c.SetDeadline(t0.Add(5 * time.Second))
		if _, err := c.Write(msg); err != nil {
			return nil, errors.New("probe: loopback: " + err.Error())
		}
		if _, err := io.ReadFull(c, back); err != nil {
			return nil, errors.New("probe: loopback: " + err.Error())
		}
		rtt.Record(0, time.Since(t0))
		if now := clk.now(); next+int64(loopInterval) < now {
			next = now - int64(loopInterval) // late: no burst to catch up
		}
	}
	return &LoopReport{RoundTrip: rtt.Summary()}, nil
}

// ---- report

func (r *ProbeReport) addNotes() {
	for _, s := range r.stallsAll {
		if s == nil || !s.quotaPattern() {
			continue
		}
		r.Notes = append(r.Notes, strconv.FormatInt(s.Aligned, 10)+" of the "+strconv.FormatInt(s.Long, 10)+
			" stalls of 2 ms or more ended within the same 5 ms of a 100 ms cycle: a CPU quota enforced per 100 ms"+
			" (the host's CFS bandwidth control) most likely stops this machine when it uses its share, and more"+
			" load, I/O above all, makes it stop more often")
		break
	}
	if s, d := r.Stalls, r.Disk; s != nil && d != nil && d.Stalls != nil && d.Stalls.Stalls5ms > 2*s.Stalls5ms+2 {
		r.Notes = append(r.Notes, "the disk load made the host stall more ("+strconv.FormatInt(d.Stalls.Stalls5ms, 10)+
			" stalls of 5 ms or more against "+strconv.FormatInt(s.Stalls5ms, 10)+" with nothing else running): here a sync holds up more than the thread that waits for it")
	}
}

// WriteJSON writes r as one JSON line.
func (r *ProbeReport) WriteJSON(w io.Writer) error { return writeJSONLine(w, r) }

// WriteTable writes r for people.
func (r *ProbeReport) WriteTable(w io.Writer) error {
	tw, head, row := newTable(w)
	verdict := "done"
	if r.Interrupted {
		verdict = "INTERRUPTED"
	}
	head("chatbench probe: " + verdict + " in " + fmtFloat(r.ElapsedS, 1) + "s (the host alone: no chatd involved)")
	h := r.Host
	head("host")
	sys := h.OS + "/" + h.Arch
	if h.Kernel != "" {
		sys += ", kernel " + h.Kernel
	}
	row("machine", strconv.Itoa(h.NumCPU)+" CPUs (GOMAXPROCS "+strconv.Itoa(h.GOMAXPROCS)+"), "+sys)
	if h.LoadBefore > 0 || h.LoadAfter > 0 {
		row("load", fmtFloat(h.LoadBefore, 2)+" before, "+fmtFloat(h.LoadAfter, 2)+" after (1-minute average)")
	}
	if r.Stalls != nil || r.Disk != nil {
		head("stalls: how late a thread sleeping " + formatMicros(r.Params.TickUS) + " at a time wakes up")
		row("while", "p50", "p99", "p99.9", "max", "wakes", "≥1ms", "≥5ms", "stalled", "≥2ms in one 5ms of 100ms")
		stallRow := func(name string, s *StallReport) {
			l := s.Lateness
			row(name, formatMicros(l.P50US), formatMicros(l.P99US), formatMicros(l.P999US), formatMicros(l.MaxUS),
				group3(s.Wakes), group3(s.Stalls1ms), group3(s.Stalls5ms), fmtFloat(s.StalledPct, 1)+"%",
				strconv.FormatInt(s.Aligned, 10)+" of "+strconv.FormatInt(s.Long, 10))
		}
		if r.Stalls != nil {
			stallRow("nothing else", r.Stalls)
		}
		if r.Disk != nil && r.Disk.Stalls != nil {
			stallRow("disk part running", r.Disk.Stalls)
		}
	}
	if d := r.Disk; d != nil {
		p := r.Params
		inFlight := "1 sync"
		if p.Depth > 1 {
			inFlight = strconv.Itoa(p.Depth) + " syncs"
		}
		head("disk: an ideal group-commit journal (" + strconv.Itoa(p.Record) + " B records at " + group3(int64(p.Rate)) + "/s" +
			", " + inFlight + " in flight)")
		head("  " + group3(d.Records) + " records in " + group3(d.Batches) + " batches (" + group3(int64(d.SyncsPerS)) +
			" syncs/s) in " + d.File + ", removed since")
		row("latency", "p50", "p90", "p99", "p99.9", "max", "count")
		row("arrival → durable", latencyCells(d.Durable)...)
		row("fdatasync", latencyCells(d.Sync)...)
	}
	if l := r.Loopback; l != nil {
		head("loopback: 64 B over TCP on 127.0.0.1 and back, " + group3(int64(time.Second/loopInterval)) + " times a second")
		row("latency", "p50", "p90", "p99", "p99.9", "max", "count")
		row("round trip", latencyCells(l.RoundTrip)...)
	}
	if len(r.Notes) > 0 {
		head("notes")
		for _, n := range r.Notes {
			row("-", n)
		}
	}
	return tw.Flush()
}
