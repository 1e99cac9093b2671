package bench

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"chatd/internal/proc"
)

var (
	chatdOnce sync.Once
	chatdBin  string
	chatdErr  error
)

// buildChatd builds ./cmd/chatd once per test binary (or uses the binary
// named by CHATBENCH_CHATD). The test is skipped only when the server does
// not build (yet).
func buildChatd(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	if bin := os.Getenv("CHATBENCH_CHATD"); bin != "" {
		return bin
	}
	chatdOnce.Do(func() {
		dir, err := os.MkdirTemp("", "chatbench-chatd-")
		if err != nil {
			chatdErr = err
			return
		}
		chatdBin = filepath.Join(dir, "chatd")
		if runtime.GOOS == "windows" {
			chatdBin += ".exe"
		}
		cmd := exec.Command("go", "build", "-o", chatdBin, "chatd/cmd/chatd")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			chatdErr = errors.New(strings.TrimSpace(string(out)))
		}
	})
	if chatdErr != nil {
		t.Skipf("./cmd/chatd does not build yet, so chatbench cannot be run against it: %v", chatdErr)
	}
	return chatdBin
}

// testServer is a chatd process started for a test.
type testServer struct {
	data string
	run  proc.RunInfo
	key  string
	cmd  *exec.Cmd
	log  *bytes.Buffer
}

// startChatd starts chatd on 127.0.0.1 with free ports and a temp data
// folder, and stops it (SIGTERM, then kill) when the test ends. extra
// are more command-line flags.
func startChatd(t *testing.T, extra ...string) *testServer {
	t.Helper()
	bin := buildChatd(t)
	s := &testServer{data: t.TempDir(), log: &bytes.Buffer{}}
	args := append([]string{"--data", s.data, "--ws-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn"}, extra...)
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		s.cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		if runtime.GOOS == "windows" {
			s.cmd.Process.Kill()
		} else {
			s.cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			s.cmd.Process.Kill()
			<-exited
			t.Errorf("chatd did not stop within 15s of SIGTERM; log:\n%s", s.log)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		ri, err := proc.ReadRunInfo(s.data)
		if err == nil && ri.PID == s.cmd.Process.Pid {
			s.run = ri
			break
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		select {
		case <-exited:
			t.Fatalf("chatd exited before it was ready; log:\n%s", s.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("chatd not ready within 30s; log:\n%s", s.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	key, err := proc.ReadAdminKey(s.data)
	if err != nil {
		t.Fatal(err)
	}
	s.key = key
	return s
}

// options returns run options against s with small, bounded sizes.
func (s *testServer) options() Options {
	return Options{
		Target:    Target{WS: proc.LocalAddr(s.run.WSAddr), HTTP: proc.LocalAddr(s.run.HTTPAddr), AdminKey: s.key},
		StatePath: filepath.Join(s.data, "chatbench.json"),
		Duration:  2 * time.Second,
		Drain:     20 * time.Second, // returns as soon as everything has arrived
		Deadline:  2 * time.Minute,
	}
}

func runScenario(t *testing.T, o Options, s Scenario) *Report {
	t.Helper()
	rep, err := Run(context.Background(), o, s)
	if err != nil {
		t.Fatalf("%s: %v", s.Name(), err)
	}
	if !rep.OK {
		var b bytes.Buffer
		rep.WriteTable(&b)
		t.Fatalf("%s not OK: %v\n%s", s.Name(), rep.Problems, b.String())
	}
	return rep
}

// checkMessages asserts that the counts of a message scenario add up.
func checkMessages(t *testing.T, rep *Report, rate float64, d time.Duration, perMessage int64) {
	t.Helper()
	m := rep.Messages
	if m == nil {
		t.Fatal("no message report")
	}
	want := streamTotal(rate, d)
	if m.Scheduled != want || m.Sent != want || m.Acked != want {
		t.Errorf("scheduled %d sent %d acked %d, want %d each", m.Scheduled, m.Sent, m.Acked, want)
	}
	if m.Errors != nil || m.Unacked != 0 || m.Lost != 0 || m.Duplicates != 0 {
		t.Errorf("errors %v unacked %d lost %d duplicates %d", m.Errors, m.Unacked, m.Lost, m.Duplicates)
	}
	if m.ExpectedDeliveries != want*perMessage || m.Delivered != m.ExpectedDeliveries {
		t.Errorf("delivered %d, expected %d, want %d", m.Delivered, m.ExpectedDeliveries, want*perMessage)
	}
	if m.AckLatency.Count != want || m.DeliveryLatency.Count != want*perMessage || m.SendLag.Count != want {
		t.Errorf("latency counts: ack %d delivery %d lag %d", m.AckLatency.Count, m.DeliveryLatency.Count, m.SendLag.Count)
	}
	if m.AckLatency.P50US <= 0 || m.AckLatency.P99US < m.AckLatency.P50US || m.AckLatency.MaxUS < m.AckLatency.P999US {
		t.Errorf("ack latency not ordered: %+v", m.AckLatency)
	}
}

func TestScenariosAgainstChatd(t *testing.T) {
	srv := startChatd(t)
	o := srv.options()

	t.Run("connect", func(t *testing.T) {
		rep := runScenario(t, o, &Connect{Conns: 200, Settle: 500 * time.Millisecond})
		c := rep.Conns
		if c.Attempted != 200 || c.Connected != 200 || c.Failed != 0 || c.RatePerS <= 0 || c.Latency.Count != 200 {
			t.Errorf("conns %+v", c)
		}
		if !rep.Provision.AppCreated || rep.Provision.UsersPushed != 200 {
			t.Errorf("first run provisioning %+v: want the app created and 200 users pushed", rep.Provision)
		}
		s := rep.Server
		if s.Error != "" || s.PID != srv.run.PID || s.ConnsPeak < 200 || s.MemorySource == "" || s.BytesPerConn == 0 {
			t.Errorf("server figures %+v", s)
		}
		// The stall sampler ran through the ramp and the hold.
		if h := rep.HostStalls; h == nil || h.Wakes < 100 || h.Lateness.Count != h.Wakes {
			t.Errorf("host stalls %+v: want the sampler's wake-ups over the run", h)
		}
	})
	t.Run("connect again reuses what was provisioned", func(t *testing.T) {
		rep := runScenario(t, o, &Connect{Conns: 50, Settle: time.Millisecond})
		if p := rep.Provision; p.AppCreated || p.UsersReused != 50 || p.UsersPushed != 0 {
			t.Errorf("second run provisioning %+v: want everything reused", p)
		}
	})
	t.Run("spread over two addresses", func(t *testing.T) {
		// One chatd reached by two addresses stands in for two nodes: the
		// run goes through every part of --ws-addrs, and connect takes the
		// portable client.
		o := o
		o.Target.WSAddrs = []string{o.Target.WS, "ws://" + o.Target.WS + "/"}
		o.Duration = time.Second
		rep := runScenario(t, o, &P2P{Pairs: 4, Rate: 100})
		checkMessages(t, rep, 100, o.Duration, 1)
		if len(rep.Options.WSAddrs) != 2 || !strings.Contains(strings.Join(rep.Notes, "\n"), "spread over 2 WebSocket addresses") {
			t.Errorf("ws addrs %v, notes %q", rep.Options.WSAddrs, rep.Notes)
		}
		rep = runScenario(t, o, &Connect{Conns: 6, Settle: time.Millisecond})
		if rep.Conns.Connected != 6 || !strings.Contains(strings.Join(rep.Notes, "\n"), "portable client") {
			t.Errorf("connected %d, notes %q", rep.Conns.Connected, rep.Notes)
		}
	})
	t.Run("p2p", func(t *testing.T) {
		rep := runScenario(t, o, &P2P{Pairs: 20, Rate: 500})
		checkMessages(t, rep, 500, o.Duration, 1)
		// The server's histograms cover exactly this run's sends.
		m := rep.Messages
		if sa := m.ServerSendAck; sa == nil || sa.Count != m.Acked || sa.P50US <= 0 || sa.P99US < sa.P50US {
			t.Errorf("server send→ack %+v: want %d sends, ordered percentiles", sa, m.Acked)
		}
		if c := m.ServerCommit; c == nil || c.Count < 1 || c.Count > m.Acked || c.P50US <= 0 {
			t.Errorf("server commits %+v for %d messages", c, m.Acked)
		}
	})
	t.Run("p2p traced", func(t *testing.T) {
		to := o
		to.Trace = filepath.Join(t.TempDir(), "trace.txt")
		rep := runScenario(t, to, &P2P{Pairs: 20, Rate: 500})
		checkMessages(t, rep, 500, o.Duration, 1)
		checkTrace(t, rep, to.Trace)
	})
	t.Run("group traced", func(t *testing.T) {
		to := o
		to.Trace = filepath.Join(t.TempDir(), "trace.txt")
		rep := runScenario(t, to, &Group{Groups: 1, Members: 10, Rate: 50})
		checkMessages(t, rep, 50, o.Duration, 9)
		checkTrace(t, rep, to.Trace)
	})
	t.Run("group", func(t *testing.T) {
		rep := runScenario(t, o, &Group{Groups: 1, Members: 50, Rate: 50})
		checkMessages(t, rep, 50, o.Duration, 49)
		if rep.Provision.GroupsCreated != 1 {
			t.Errorf("provisioning %+v: want one group created", rep.Provision)
		}
		rep = runScenario(t, o, &Group{Groups: 2, Members: 20, Rate: 40})
		checkMessages(t, rep, 40, o.Duration, 19)
	})
	t.Run("churn", func(t *testing.T) {
		rep := runScenario(t, o, &Churn{Conns: 40, ChurnRate: 20, Rate: 200, Offline: 50 * time.Millisecond})
		ch := rep.Churn
		if ch == nil || ch.Missed != 0 || ch.Reconnects < 20 || ch.Expected == 0 || ch.SyncCalls < ch.Reconnects {
			t.Fatalf("churn %+v", ch)
		}
		if ch.RecoveredBySync == 0 {
			t.Errorf("no message was recovered by sync: the scenario did not exercise reconnect catch-up (%+v)", ch)
		}
		m := rep.Messages
		if m.Sent+m.Skipped != m.Scheduled || m.Acked+m.Lost != m.Sent || m.Errors != nil {
			t.Errorf("messages %+v", m)
		}
	})
	t.Run("http", func(t *testing.T) {
		rep := runScenario(t, o, &HTTP{Rate: 200, Concurrency: 16, Pairs: 5})
		checkMessages(t, rep, 200, o.Duration, 1)
		// HTTP sends are committed but are not WebSocket sends.
		if m := rep.Messages; m.ServerSendAck == nil || m.ServerSendAck.Count != 0 || m.ServerCommit == nil || m.ServerCommit.Count < 1 {
			t.Errorf("server figures %+v / %+v: want no WebSocket sends and some commits", m.ServerSendAck, m.ServerCommit)
		}
		if h := rep.HTTP; h == nil || h.OK != 400 || h.Requests != 400 || h.Errors != nil || h.Latency.Count != 400 {
			t.Errorf("http %+v", rep.HTTP)
		}
		if rep.Messages.Echoes != 400 {
			t.Errorf("echoes %d: a message sent over HTTP also reaches the sender's own connection", rep.Messages.Echoes)
		}
	})
	t.Run("service", func(t *testing.T) {
		// The second run reopens the conversations the first resolved.
		for run := range 2 {
			rep := runScenario(t, o, &Service{Shops: 2, Agents: 2, Customers: 6, Rate: 200})
			checkMessages(t, rep, 200, o.Duration, 1)
			sv := rep.Service
			if sv == nil || sv.Assigned != 12 || sv.Queued != 0 || sv.Errors != nil || sv.OpenToAssigned.Count != 12 || sv.OpenToAssigned.P50US <= 0 {
				t.Fatalf("run %d: service %+v", run, sv)
			}
			t.Logf("run %d: open → assigned %+v", run, sv.OpenToAssigned)
		}
	})
	t.Run("cleanup revokes tokens and the next run issues new ones", func(t *testing.T) {
		oc := o
		oc.Cleanup = true
		rep := runScenario(t, oc, &Connect{Conns: 20, Settle: time.Millisecond})
		if rep.Provision.TokensRevoked < 20 {
			t.Errorf("revoked %d users' tokens", rep.Provision.TokensRevoked)
		}
		st, err := LoadState(o.StatePath)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range st.Users {
			if u.Token != "" {
				t.Fatalf("state still holds %s's token after cleanup", u.UID)
			}
		}
		rep = runScenario(t, o, &Connect{Conns: 20, Settle: time.Millisecond})
		if rep.Provision.UsersPushed != 20 {
			t.Errorf("after cleanup: %+v, want 20 users pushed with new tokens", rep.Provision)
		}
	})
	t.Run("stale tokens are reissued", func(t *testing.T) {
		st, err := LoadState(o.StatePath)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			st.Users[i].Token = "revoked-" + st.Users[i].Token
		}
		if err := st.Save(o.StatePath); err != nil {
			t.Fatal(err)
		}
		rep := runScenario(t, o, &Connect{Conns: 10, Settle: time.Millisecond})
		if rep.Conns.TokensRefreshed != 10 || rep.Conns.Connected != 10 {
			t.Errorf("conns %+v: want 10 connected after 10 token refreshes", rep.Conns)
		}
	})
	// runInterrupted runs a minute-long p2p and interrupts it after 1.5 s:
	// the report must come back well before the minute is over.
	runInterrupted := func(t *testing.T, oi Options) *Report {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		oi.Duration = time.Minute
		time.AfterFunc(1500*time.Millisecond, cancel)
		start := time.Now()
		rep, err := Run(ctx, oi, &P2P{Pairs: 5, Rate: 100})
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 30*time.Second {
			t.Errorf("interrupted run took %v", took)
		}
		if !rep.Interrupted || rep.OK || rep.Messages == nil || rep.Messages.Sent == 0 {
			t.Fatalf("interrupted report: interrupted %v ok %v messages %+v", rep.Interrupted, rep.OK, rep.Messages)
		}
		return rep
	}
	t.Run("interrupt stops early with a report", func(t *testing.T) {
		runInterrupted(t, o)
	})
	t.Run("interrupt does not wait for the trace", func(t *testing.T) {
		// chatd's trace runs for the whole minute; the report must not.
		oi := o
		oi.Trace = filepath.Join(t.TempDir(), "trace.txt")
		rep := runInterrupted(t, oi)
		if rep.Messages.Trace != nil || !slices.ContainsFunc(rep.Notes, func(n string) bool {
			return strings.Contains(n, "no trace: the run was stopped early")
		}) {
			t.Errorf("interrupted traced run: trace %+v, notes %q", rep.Messages.Trace, rep.Notes)
		}
	})
	t.Run("hard deadline bounds the run", func(t *testing.T) {
		od := o
		od.Duration, od.Deadline = time.Minute, 3*time.Second
		start := time.Now()
		rep, err := Run(context.Background(), od, &Connect{Conns: 10, Settle: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 30*time.Second {
			t.Errorf("run with a 3s deadline took %v", took)
		}
		if !rep.DeadlineHit || rep.OK {
			t.Errorf("deadline_hit %v ok %v, want true and false", rep.DeadlineHit, rep.OK)
		}
	})
}

func TestRunAgainstNothingFailsCleanly(t *testing.T) {
	o := Options{Target: Target{WS: "127.0.0.1:1", HTTP: "127.0.0.1:1", AdminKey: strings.Repeat("a", 64)}, Deadline: 20 * time.Second}
	_, err := Run(context.Background(), o, &Connect{Conns: 1})
	if err == nil || !strings.Contains(err.Error(), "list apps") {
		t.Fatalf("Run against a closed port: %v, want a clear provisioning error", err)
	}
}

// checkTrace asserts that a traced run joined every delivery with chatd's
// records (the trace starts before the schedule and ends after it), that
// the parts add up to the delivery latency for every joined record in the
// file, and that the report's parts are ordered distributions.
func checkTrace(t *testing.T, rep *Report, path string) {
	t.Helper()
	m := rep.Messages
	tr := m.Trace
	if tr == nil {
		t.Fatalf("no trace in the report; notes %v", rep.Notes)
	}
	if tr.Joined != m.Delivered || tr.Untraced != 0 || tr.File != path {
		t.Errorf("trace joined %d, untraced %d of %d deliveries, file %q", tr.Joined, tr.Untraced, m.Delivered, tr.File)
	}
	if len(tr.Parts) != len(traceParts) || tr.Total.Latency.Count != m.Delivered {
		t.Fatalf("trace parts %+v, total %+v", tr.Parts, tr.Total)
	}
	for _, p := range append(tr.Parts, tr.Total) {
		if l := p.Latency; l.Count != m.Delivered || l.P99US < l.P50US || l.MaxUS < l.P999US {
			t.Errorf("part %q: %+v", p.Name, l)
		}
	}
	if tr.Total.Latency.P50US <= 0 || tr.Parts[3].Latency.P50US <= 0 {
		t.Errorf("total p50 %d µs, group commit p50 %d µs: want both positive", tr.Total.Latency.P50US, tr.Parts[3].Latency.P50US)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if int64(len(lines)-1) != m.Delivered || !strings.HasPrefix(lines[0], "# chatbench trace: session seq due written decoded") {
		t.Fatalf("trace file: %d lines, header %q; want %d records", len(lines), lines[0], m.Delivered)
	}
	checkTraceEpoch(t, lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 9 {
			t.Fatalf("trace record %q: want 9 fields", l)
		}
		var pt [7]int64
		for i := range pt {
			pt[i], _ = strconv.ParseInt(f[2+i], 10, 64)
		}
		// The server's points are ordered; written precedes decoded and
		// due precedes written (open loop: never early).
		if !(pt[0] <= pt[1] && pt[1] <= pt[2] && pt[2] <= pt[3] && pt[3] <= pt[4] && pt[4] <= pt[5]) {
			t.Fatalf("trace record %q: points out of order", l)
		}
	}
}
