package bench

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"chatd/httpapi/apiclient"
)

// Options are the settings every scenario shares. Zero values mean the
// documented defaults.
type Options struct {
	Target      Target
	AllowRemote bool // permit a non-loopback target

	// Sources is the local source address list (see ParseSources). Empty
	// means DefaultSources for a loopback IPv4 target (keeping those this
	// host can bind) and none otherwise; "none" lets the kernel choose.
	Sources string

	// StatePath is the state file (see State); empty keeps no state.
	StatePath string
	// Fresh ignores the state file's users and groups and provisions anew.
	Fresh bool
	// Cleanup revokes the tokens chatbench recorded once the run is over.
	Cleanup bool
	// App is the app chatbench provisions and uses. Zero means "chatbench".
	App string

	// Duration is how long the scenario sends (or holds). Zero means 10s.
	Duration time.Duration
	// Drain is how long to wait after sending for outstanding replies and
	// deliveries. Zero means 10s.
	Drain time.Duration
	// Deadline bounds the whole run, provisioning included. Zero means
	// Duration + Drain + 3 minutes.
	Deadline time.Duration

	// ConnectRate caps new connections per second while ramping. Zero means
	// as fast as DialConcurrency allows.
	ConnectRate float64
	// DialConcurrency is how many connections are opened at once. Zero
	// means 64.
	DialConcurrency int
	// ConnectTimeout bounds one dial + upgrade + login. Zero means 10s.
	ConnectTimeout time.Duration
	// Window is how many sends one connection keeps unanswered; further
	// sends wait on the client (their latency still counts from their
	// intended time). Zero means 256, chatd's per-connection queue.
	Window int
	// Size is the text length of each message in bytes. Zero means 32.
	Size int
	// Workers is how many HTTP requests provisioning runs at once. Zero
	// means 32.
	Workers int
	// Place is how connections are placed over several WebSocket
	// addresses (place.go): PlaceSpread (empty: the default) or
	// PlaceTogether (p2p and group).
	Place string

	// Trace, for the WebSocket message scenarios (p2p, group, churn), has
	// chatd trace every send during the schedule (GET /debug/msgtrace),
	// joins its records with chatbench's and splits each delivery's
	// latency into its parts (trace.go): the summary goes in the report,
	// the joined records into this file. Empty: no trace.
	Trace string

	// StallSampler is the command line of a process that samples the
	// host's stalls beside the run (RunStallSampler: it samples until its
	// stdin closes); empty samples on a thread of this process instead.
	StallSampler []string

	// Progress receives the live status line; nil prints nothing.
	Progress io.Writer
	// ProgressTTY rewrites one line in place instead of printing lines.
	ProgressTTY bool
}

func (o *Options) fill() {
	if o.App == "" {
		o.App = "chatbench"
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Drain <= 0 {
		o.Drain = 10 * time.Second
	}
	if o.Deadline <= 0 {
		o.Deadline = o.Duration + o.Drain + 3*time.Minute
	}
	if o.DialConcurrency <= 0 {
		o.DialConcurrency = 64
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.Window <= 0 {
		o.Window = 256
	}
	if o.Size <= 0 {
		o.Size = 32
	}
	if o.Workers <= 0 {
		o.Workers = 32
	}
}

// Scenario is one kind of load. The scenarios are Connect, P2P, Group,
// Churn and HTTP.
type Scenario interface {
	// Name is the scenario's command name.
	Name() string
	// check validates the parameters and fills their defaults.
	check(o *Options) error
	// users is how many provisioned users the scenario needs.
	users() int
	// sockets is how many client sockets it holds at once, beyond FDReserve.
	sockets() int
	// run drives the load and fills e.rep.
	run(e *env) error
}

// env is one run's shared state. Owned by Run's goroutine; the fields
// scenarios share with other goroutines are the atomics in tr and the
// safe-for-concurrent-use opener, provisioner and recorders.
type env struct {
	o      Options
	ctx    context.Context // ends on interrupt or deadline: stop sending
	clk    clock
	tgt    resolved
	api    *apiclient.Client
	prov   *provisioner
	open   *opener
	tr     *traffic
	rep    *Report
	prog   *progress
	runTag string

	connectLat *Recorder
	statusMu   sync.Mutex // guards the peak fields of rep.Server

	// The server's histograms read before the schedule (servermetrics.go),
	// or why they could not be.
	srvBefore map[string]promHist
	srvErr    error
}

// Run provisions what s needs, runs it and returns its report. Canceling
// ctx (Ctrl-C) stops the scenario early; the report is still returned,
// with Interrupted set. An error means the run could not take place
// (bad options, server unreachable, provisioning failed); a run that took
// place but whose checks failed returns a report with OK false.
func Run(ctx context.Context, o Options, s Scenario) (*Report, error) {
	o.fill()
	if err := s.check(&o); err != nil {
		return nil, err
	}
	unit, err := placeUnitFor(o.Place, s) // place.go
	if err != nil {
		return nil, err
	}
	tgt, err := resolveTarget(ctx, o.Target, o.AllowRemote)
	if err != nil {
		return nil, err
	}
	srcs, err := pickSources(o.Sources, tgt)
	if err != nil {
		return nil, err
	}
	limit, hasLimit := FDLimit()
	if err := CheckFDs(s.sockets(), FDReserve+o.Workers, limit, hasLimit); err != nil {
		return nil, err
	}

	started := time.Now()
	rep := &Report{Scenario: s.Name(), Params: s, Started: started.UTC(), Problems: []string{}}
	rep.Options = ReportOptions{
		WS: wsURL(tgt.ws), HTTP: tgt.http.base, App: o.App, State: o.StatePath,
		Fresh: o.Fresh, Cleanup: o.Cleanup, DurationS: o.Duration.Seconds(), DrainS: o.Drain.Seconds(),
		DeadlineS: o.Deadline.Seconds(), ConnectRate: o.ConnectRate, DialConcurrency: o.DialConcurrency,
		ConnectTimeoutS: o.ConnectTimeout.Seconds(), Window: o.Window, Size: o.Size, Workers: o.Workers,
	}
	if len(tgt.wsAll) > 1 {
		for _, ep := range tgt.wsAll {
			rep.Options.WSAddrs = append(rep.Options.WSAddrs, wsURL(ep))
		}
		rep.Options.Place = o.Place
		rep.Notes = append(rep.Notes, placeNote(o.Place, s, len(tgt.wsAll)))
	}
	for _, a := range srcs {
		rep.Options.Sources = append(rep.Options.Sources, a.String())
	}
	rep.Client = ClientReport{GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), FDLimit: limit, Sockets: s.sockets()}
	rep.Client.LoadBefore, _ = loadAvg()
	cpu0, hasCPU := cpuTime()

	runCtx, cancel := context.WithTimeoutCause(ctx, o.Deadline, errDeadline)
	defer cancel()

	clk := newClock()
	prog := newProgress(o.Progress, o.ProgressTTY, 500*time.Millisecond)
	go prog.run()
	defer prog.close()

	httpDialer := &dialer{ep: tgt.http, srcs: srcs, timeout: o.ConnectTimeout}
	api := newAPIClient(tgt.http.base, o.Target.AdminKey, httpDialer, o.Workers+8)
	defer api.HTTP.Transport.(*http.Transport).CloseIdleConnections()

	st, err := LoadState(o.StatePath)
	if err != nil {
		return nil, err
	}
	if o.Fresh {
		st = &State{Version: StateVersion}
	}
	prov := &provisioner{api: api, path: o.StatePath, workers: o.Workers, rep: &rep.Provision, prog: prog, st: st}
	runTag := newRunTag()
	tr := newTraffic(clk, runTag)
	if o.Trace != "" {
		tr.trace = newMsgTrace(o.Trace)
	}
	e := &env{
		o: o, ctx: runCtx, clk: clk, tgt: tgt, api: api, prov: prov, tr: tr, rep: rep, prog: prog,
		runTag: runTag, connectLat: NewRecorder(),
	}
	e.open = &opener{
		ds:  wsDialers(tgt, srcs, o.ConnectTimeout),
		cfg: &connCfg{clk: clk, tr: tr, window: o.Window, text: strings.Repeat("x", o.Size), runTag: e.runTag, maxFrame: 16 << 20, callLimit: 30 * time.Second},
		app: o.App, tokens: prov, timeout: o.ConnectTimeout, unit: unit,
	}

	// Provision.
	t0 := time.Now()
	if err := prov.ensureApp(runCtx, o.App); err != nil {
		return nil, e.abort(err)
	}
	if err := prov.ensureUsers(runCtx, s.users(), started.Add(o.Deadline)); err != nil {
		st.Save(o.StatePath) // keep what was made
		return nil, e.abort(err)
	}
	rep.Provision.Seconds = time.Since(t0).Seconds()
	if err := st.Save(o.StatePath); err != nil {
		return nil, err
	}
	e.sampleStatus(true)
	if rep.Server.MemorySource == "proc_statm" {
		prog.note("note: the server does not report rss_bytes; its memory is read from /proc/" + strconv.Itoa(rep.Server.PID) + "/statm")
	}

	stopStalls := startHostStalls(o.StallSampler, time.Millisecond)
	runErr := s.run(e)
	if rep.HostStalls, err = stopStalls(); err != nil {
		rep.Notes = append(rep.Notes, "no host stall figures: "+err.Error())
	}

	// Whatever happened, record what was made and measured.
	if err := st.Save(o.StatePath); err != nil && runErr == nil {
		runErr = err
	}
	rep.Conns.TokensRefreshed = e.open.reissued.Load()
	rep.Conns.Disconnects = tr.disconnects.snapshot()
	if o.Cleanup {
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		if err := prov.cleanup(cctx); err != nil {
			rep.Problems = append(rep.Problems, "cleanup: "+err.Error())
		}
		ccancel()
		if err := st.Save(o.StatePath); err != nil && runErr == nil {
			runErr = err
		}
	}
	if ctx.Err() != nil {
		rep.Interrupted = true
	} else if errors.Is(context.Cause(runCtx), errDeadline) {
		rep.DeadlineHit = true
		rep.Problems = append(rep.Problems, "the hard deadline ("+o.Deadline.String()+") ended the run")
	}
	rep.ElapsedS = time.Since(started).Seconds()
	if cpu1, ok := cpuTime(); ok && hasCPU {
		rep.Client.CPUSeconds = (cpu1 - cpu0).Seconds()
		rep.Client.CPUCores = rep.Client.CPUSeconds / rep.ElapsedS
	}
	rep.Client.LoadAfter, _ = loadAvg()
	rep.addNotes()
	if runErr != nil && !rep.Interrupted && !rep.DeadlineHit {
		return rep, runErr
	}
	rep.OK = len(rep.Problems) == 0 && !rep.Interrupted
	return rep, nil
}

var errDeadline = errors.New("hard deadline reached")

// wsDialers returns one dialer per WebSocket endpoint of tgt.
func wsDialers(tgt resolved, srcs []netip.Addr, timeout time.Duration) []*dialer {
	ds := make([]*dialer, len(tgt.wsAll))
	for i, ep := range tgt.wsAll {
		ds[i] = &dialer{ep: ep, srcs: srcs, timeout: timeout}
	}
	return ds
}

// abort turns an error during provisioning into the run's error, naming
// an interrupt or the deadline when that is what ended it.
func (e *env) abort(err error) error {
	if errors.Is(context.Cause(e.ctx), errDeadline) {
		return errors.New("hard deadline (" + e.o.Deadline.String() + ") reached while provisioning: " + err.Error())
	}
	if e.ctx.Err() != nil {
		return errors.New("interrupted while provisioning")
	}
	return err
}

// pickSources parses o.Sources and applies the default for the target.
func pickSources(spec string, tgt resolved) ([]netip.Addr, error) {
	if spec == "" {
		if !tgt.loopback || !tgt.ws.addr.Addr().Is4() {
			return nil, nil
		}
		def, _ := ParseSources(DefaultSources)
		ok, _ := usableSources(def) // e.g. macOS binds only 127.0.0.1 unless aliases are added
		return ok, nil
	}
	srcs, err := ParseSources(spec)
	if err != nil {
		return nil, errors.New("--sources: " + err.Error())
	}
	for _, ep := range tgt.wsAll {
		if err := checkSources(srcs, ep.addr.Addr()); err != nil {
			return nil, errors.New("--sources: " + err.Error())
		}
	}
	if ok, bad := usableSources(srcs); len(bad) > 0 {
		return nil, errors.New("--sources: this host cannot bind " + bad[0].String() + " (" + strconv.Itoa(len(bad)) + " of " +
			strconv.Itoa(len(ok)+len(bad)) + " unusable); on macOS add loopback aliases with ifconfig lo0 alias")
	}
	return srcs, nil
}

// wsURL is ep as the report shows it.
func wsURL(ep endpoint) string { return "ws://" + ep.host + ep.path }

// newRunTag returns a short random tag that makes this run's cids unique.
func newRunTag() string {
	var b [5]byte
	rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// serverStatus is GET /admin/v1/status; rss_bytes is read when the server
// reports it.
type serverStatus struct {
	apiclient.Status
	RSSBytes uint64 `json:"rss_bytes"`
}

func (e *env) status(ctx context.Context) (serverStatus, error) {
	var st serverStatus
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := e.api.Do(ctx, http.MethodGet, "/admin/v1/status", nil, &st)
	return st, err
}

// sampleStatus reads the server status and folds it into rep.Server
// (first: the "before" figures). A failure is noted, not fatal.
func (e *env) sampleStatus(first bool) (serverStatus, bool) {
	st, err := e.status(context.WithoutCancel(e.ctx))
	e.statusMu.Lock()
	defer e.statusMu.Unlock()
	s := &e.rep.Server
	if err != nil {
		s.Error = err.Error()
		return st, false
	}
	s.Version, s.PID = st.Version, st.PID
	source := "rss_bytes"
	if st.RSSBytes == 0 && e.tgt.loopback {
		// The server does not report its RSS: read it from the kernel
		// when it runs on this host.
		if rss, ok := processRSS(st.PID); ok {
			st.RSSBytes, source = rss, "proc_statm"
		}
	}
	if first {
		s.ConnsBefore, s.RSSBefore, s.HeapBefore = st.Conns, st.RSSBytes, st.HeapBytes
	}
	s.ConnsPeak = max(s.ConnsPeak, st.Conns)
	s.RSSPeak = max(s.RSSPeak, st.RSSBytes)
	s.HeapPeak = max(s.HeapPeak, st.HeapBytes)
	if st.RSSBytes > 0 {
		s.MemorySource = source
	} else if st.HeapBytes > 0 {
		s.MemorySource = "heap_bytes"
	}
	return st, true
}

// ---- ramp

// ramp opens one logged-in connection per user in users, DialConcurrency
// at a time (and at most ConnectRate per second), and returns them in the
// same order, nil where the attempt failed. It fills rep.Conns.
func (e *env) ramp(users []int) []*wsConn {
	conns := make([]*wsConn, len(users))
	st := e.startRamp(len(users))
	var pace *Pacer
	if e.o.ConnectRate > 0 {
		pace = &Pacer{Start: e.clk.now(), Rate: e.o.ConnectRate, Total: int64(len(users)), Stride: 1}
	}
	var paceMu sync.Mutex // guards pace
	t0 := time.Now()
	parallel(e.ctx, e.o.DialConcurrency, len(users), func(ctx context.Context, k int) error {
		if pace != nil {
			paceMu.Lock()
			_, at, _ := pace.Next()
			pace.Advance()
			paceMu.Unlock()
			if !sleepUntil(ctx, e.clk, at) {
				return nil
			}
		}
		start := time.Now()
		cn, err := e.open.open(ctx, users[k])
		if err != nil {
			if ctx.Err() == nil {
				st.failed.Add(1)
				var ce *ConnectError
				if errors.As(err, &ce) {
					st.failures.add(ce.Key(), 1)
				} else {
					st.failures.add(err.Error(), 1)
				}
			}
			return nil
		}
		e.connectLat.Record(k, time.Since(start))
		conns[k] = cn
		st.ok.Add(1)
		return nil
	})
	e.recordRamp(t0, st, len(users))
	return conns
}

// startRamp counts n attempts in the report and shows the ramp's progress
// from the stats it returns; both connectors start with it.
func (e *env) startRamp(n int) *rampStats {
	st := &rampStats{}
	e.rep.Conns.Attempted += int64(n)
	e.prog.set("ramp", func(b []byte) []byte {
		b = append(b, "connected "...)
		b = appendInt(b, st.ok.Load())
		b = append(b, '/')
		b = appendInt(b, int64(n))
		if f := st.failed.Load(); f > 0 {
			b = append(b, ", failed "...)
			b = appendInt(b, f)
		}
		return b
	})
	return st
}

// recordRamp adds one ramp's outcome (started at t0, of n attempts) to the
// report's connection figures; both connectors end with it.
func (e *env) recordRamp(t0 time.Time, st *rampStats, n int) {
	c := &e.rep.Conns
	failed := st.failed.Load()
	c.RampS += time.Since(t0).Seconds()
	c.Connected += st.ok.Load()
	c.Failed += failed
	for k, v := range st.failures.snapshot() {
		if c.Failures == nil {
			c.Failures = map[string]int64{}
		}
		c.Failures[k] += v
	}
	if c.RampS > 0 {
		c.RatePerS = float64(c.Connected) / c.RampS
	}
	c.Latency = e.connectLat.Summary()
	if failed > 0 {
		e.problem(group3(failed) + " of " + group3(int64(n)) + " connections failed")
	}
}

// sleepUntil waits until run time at; false when ctx ended first.
func sleepUntil(ctx context.Context, clk clock, at int64) bool {
	return sleepCtx(ctx, time.Duration(at-clk.now()))
}

// closeAll closes every connection (close frame, then the socket) with
// bounded parallelism.
func (e *env) closeAll(conns []*wsConn) {
	e.prog.set("closing", func(b []byte) []byte { return append(b, "closing connections"...) })
	parallel(context.Background(), 64, len(conns), func(_ context.Context, k int) error {
		if c := conns[k]; c != nil {
			c.close(time.Second)
		}
		return nil
	})
}

// problem records a failed check.
func (e *env) problem(s string) { e.rep.Problems = append(e.rep.Problems, s) }

// stopped reports whether the run was interrupted or hit its deadline.
func (e *env) stopped() bool { return e.ctx.Err() != nil }

// Cleanup revokes every chat token recorded in the state file (which
// disconnects their devices) and saves the state without them. It returns
// how many users' tokens were revoked. Users stay on the server: chatd
// cannot delete users yet; a later run reuses them with new tokens.
func Cleanup(ctx context.Context, o Options) (int, error) {
	o.fill()
	if o.StatePath == "" {
		return 0, errors.New("cleanup needs the state file that records what chatbench made (--state)")
	}
	tgt, err := resolveTarget(ctx, o.Target, o.AllowRemote)
	if err != nil {
		return 0, err
	}
	srcs, err := pickSources(o.Sources, tgt)
	if err != nil {
		return 0, err
	}
	st, err := LoadState(o.StatePath)
	if err != nil {
		return 0, err
	}
	if st.App == "" {
		return 0, nil
	}
	api := newAPIClient(tgt.http.base, o.Target.AdminKey, &dialer{ep: tgt.http, srcs: srcs, timeout: o.ConnectTimeout}, o.Workers+8)
	defer api.HTTP.Transport.(*http.Transport).CloseIdleConnections()
	api.App, api.Secret = st.App, st.Secret
	rep := &ProvisionReport{}
	p := &provisioner{api: api, path: o.StatePath, workers: o.Workers, rep: rep, st: st}
	cerr := p.cleanup(ctx)
	if err := st.Save(o.StatePath); err != nil && cerr == nil {
		cerr = err
	}
	return rep.TokensRevoked, cerr
}

// addNotes adds the caveats a reader needs to trust the figures: a host
// already busy, a client that fell behind its schedule or ran out of CPU.
func (r *Report) addNotes() {
	c := r.Client
	if c.NumCPU > 0 && c.LoadBefore > float64(c.NumCPU) {
		r.Notes = append(r.Notes, "the host was busy before the run (load "+fmtFloat(c.LoadBefore, 1)+" on "+
			strconv.Itoa(c.NumCPU)+" CPUs): other work competed with chatd and chatbench")
	}
	if c.GOMAXPROCS > 0 && c.CPUCores > 0.8*float64(c.GOMAXPROCS) {
		r.Notes = append(r.Notes, "chatbench used "+fmtFloat(c.CPUCores, 2)+" of its "+strconv.Itoa(c.GOMAXPROCS)+
			" cores: the client may have been the bottleneck")
	}
	if m := r.Messages; m != nil && m.Foreign > 0 {
		r.Notes = append(r.Notes, group3(m.Foreign)+" messages not sent by this run reached its users (another client or chatbench run on the same app?); they are not counted")
	}
	if h := r.HostStalls; h != nil && h.Stalls5ms > 0 {
		n := "the host stalled: a thread sleeping " + formatMicros(h.TickUS) + " at a time woke 5 ms or more late " +
			group3(h.Stalls5ms) + " times (longest " + formatMicros(h.Lateness.MaxUS) + ")"
		if h.quotaPattern() {
			n += ", and " + strconv.FormatInt(h.Aligned, 10) + " of its " + strconv.FormatInt(h.Long, 10) +
				" stalls of 2 ms or more ended at the same point of a 100 ms cycle, the mark of a CPU quota the host enforces"
		}
		r.Notes = append(r.Notes, n+"; latencies that long are the machine's as much as the server's (chatbench probe measures the host alone)")
	}
	if m := r.Messages; m != nil && m.SendLag.P99US > 1000 && m.SendLag.P99US*5 > m.AckLatency.P99US {
		why := "the host may be short of CPU"
		if r.HTTP != nil {
			why = "all --concurrency requests were busy, or the host is short of CPU"
		}
		r.Notes = append(r.Notes, "chatbench fell behind its schedule (send lag p99 "+formatMicros(m.SendLag.P99US)+
			", ack p99 "+formatMicros(m.AckLatency.P99US)+"): latencies include that delay; "+why)
	}
}
