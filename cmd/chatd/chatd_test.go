//go:build linux

package main

// These tests run the real binaries: chatd and chatctl are built once into
// a temporary folder by TestMain, and every test starts its own server on
// 127.0.0.1 port 0 with its own data folder.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"golang.org/x/sys/unix"

	"chatd/httpapi/apiclient"
	"chatd/internal/config"
	"chatd/internal/proc"
)

var (
	chatdBin   string
	chatctlBin string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chatd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	chatdBin = filepath.Join(dir, "chatd")
	chatctlBin = filepath.Join(dir, "chatctl")
	for bin, pkg := range map[string]string{chatdBin: "chatd/cmd/chatd", chatctlBin: "chatd/cmd/chatctl"} {
		args := []string{"build", "-ldflags", "-X main.version=v0.0.0-test", "-o", bin}
		if raceBuild {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, pkg)...).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is a finished command.
type result struct {
	stdout, stderr string
	code           int
}

// runBin runs a binary to completion (bounded by 60s) with the test's
// environment plus env.
func runBin(t *testing.T, env []string, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %q: %v", filepath.Base(bin), args, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// cleanEnv is the environment without CHATD_ variables that could leak
// in from the developer's shell.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHATD_") && !strings.HasPrefix(kv, proc.ChildEnv) {
			out = append(out, kv)
		}
	}
	return out
}

// newDataDir returns a fresh data folder path (not created) and makes sure
// any server left on it is killed when the test ends.
func newDataDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	t.Cleanup(func() {
		if pid, err := proc.ReadPID(dir); err == nil && proc.Alive(pid) {
			t.Errorf("server pid %d still running at the end of the test; killing it", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return dir
}

// addrFlags make a server listen on free loopback ports.
func addrFlags(dir string) []string {
	return []string{"--data", dir, "--ws-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}
}

// waitRunInfo waits for the server on dir to publish chatd.run (for pid,
// when pid > 0).
func waitRunInfo(t *testing.T, dir string, pid int) proc.RunInfo {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ri, err := proc.ReadRunInfo(dir)
		if err == nil && (pid == 0 || ri.PID == pid) {
			return ri
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s from pid %d: %v", proc.RunFile, pid, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func getHealth(t *testing.T, ri proc.RunInfo) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(ri.HTTPURL() + "/healthz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// foreground is a chatd started without a subcommand.
type foreground struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{} // closed when the process has been reaped
	err    error         // Wait's result, valid after done
}

func startForeground(t *testing.T, env []string, args ...string) *foreground {
	t.Helper()
	f := &foreground{stderr: &syncBuffer{}, done: make(chan struct{})}
	f.cmd = exec.Command(chatdBin, args...)
	f.cmd.Env = append(cleanEnv(), env...)
	f.cmd.Stderr = f.stderr
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { f.err = f.cmd.Wait(); close(f.done) }()
	t.Cleanup(func() {
		f.cmd.Process.Kill()
		<-f.done
	})
	return f
}

// wait waits (bounded) for the process to exit and returns its exit code.
func (f *foreground) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(d):
		t.Fatalf("chatd did not exit within %s; stderr:\n%s", d, f.stderr.String())
	}
	var ee *exec.ExitError
	if errors.As(f.err, &ee) {
		return ee.ExitCode()
	}
	if f.err != nil {
		t.Fatal(f.err)
	}
	return 0
}

// syncBuffer is a bytes.Buffer safe for the exec copier and the test.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func getsid(pid int) (int, error) { return unix.Getsid(pid) }

func TestForegroundStartAndSIGTERM(t *testing.T) {
	dir := newDataDir(t)
	f := startForeground(t, nil, addrFlags(dir)...)
	ri := waitRunInfo(t, dir, f.cmd.Process.Pid)

	if code, body := getHealth(t, ri); code != 200 || !strings.Contains(body, `"ok":true`) {
		t.Fatalf("/healthz = %d %s", code, body)
	}
	if !strings.HasPrefix(ri.WSAddr, "127.0.0.1:") || strings.HasSuffix(ri.WSAddr, ":0") {
		t.Fatalf("chatd.run ws_addr %q is not the real bound address", ri.WSAddr)
	}
	if ri.Version != "v0.0.0-test" || ri.DataDir != dir {
		t.Fatalf("run info %+v", ri)
	}

	// First start: the data folder is private and the admin key exists
	// with mode 0600, and the operator is told what to do next.
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("data folder mode: %v %v", st.Mode(), err)
	}
	kst, err := os.Stat(filepath.Join(dir, proc.AdminKeyFile))
	if err != nil || kst.Mode().Perm() != 0o600 {
		t.Fatalf("admin.key: %v %v", kst, err)
	}
	key, err := proc.ReadAdminKey(dir)
	if err != nil || len(key) != 64 {
		t.Fatalf("admin key %q: %v", key, err)
	}
	errOut := f.stderr.String()
	if want := "created admin key at " + filepath.Join(dir, "admin.key"); !strings.Contains(errOut, want) {
		t.Errorf("stderr lacks %q:\n%s", want, errOut)
	}
	// The hint's command runs as printed: chatctl beside this chatd, the
	// data folder, the README's app.
	_, after, ok := strings.Cut(errOut, "next, register your site as an app (README.md, step 2):\n")
	hint, _, _ := strings.Cut(after, "\n")
	if !ok || !strings.HasPrefix(hint, "  "+chatctlBin+" app create --data "+dir+" ") {
		t.Fatalf("no hint naming this chatctl and data folder in stderr:\n%s", errOut)
	}
	out, err := exec.Command("sh", "-c", strings.TrimSpace(hint)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "id      myshop") {
		t.Fatalf("hint %q: %v\n%s", hint, err, out)
	}

	// A WebSocket client is told the server is going away (1001).
	conn, br, _, err := ws.Dial(context.Background(), "ws://"+ri.WSAddr+"/")
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	defer conn.Close()
	var rd io.Reader = conn
	if br != nil {
		rd = br
	}
	closed := make(chan error, 1)
	go func() {
		rw := struct {
			io.Reader
			io.Writer
		}{rd, conn}
		for {
			if _, _, err := wsutil.ReadServerData(rw); err != nil {
				closed <- err
				return
			}
		}
	}()

	t0 := time.Now()
	if err := f.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := f.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM; stderr:\n%s", code, f.stderr.String())
	}
	t.Logf("stopped in %s", time.Since(t0))
	select {
	case err := <-closed:
		var ce wsutil.ClosedError
		if !errors.As(err, &ce) || ce.Code != ws.StatusGoingAway {
			t.Fatalf("client read %v, want close 1001", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client got no close frame")
	}
	for _, name := range []string{proc.RunFile, proc.PIDFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after a clean stop: %v", name, err)
		}
	}
	if !strings.Contains(f.stderr.String(), "chatd stopped") {
		t.Errorf("stderr lacks the stop line:\n%s", f.stderr.String())
	}

	// Second start reads the same key and does not announce a new one.
	f2 := startForeground(t, nil, addrFlags(dir)...)
	waitRunInfo(t, dir, f2.cmd.Process.Pid)
	if k2, _ := proc.ReadAdminKey(dir); k2 != key {
		t.Fatal("admin key changed on the second start")
	}
	f2.cmd.Process.Signal(os.Interrupt)
	if code := f2.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGINT", code)
	}
	if strings.Contains(f2.stderr.String(), "created admin key") {
		t.Fatal("second start claims to have created the admin key")
	}
}

func TestDaemonLifecycle(t *testing.T) {
	dir := newDataDir(t)
	// A config file, an env var and a flag: the daemon child must run with
	// exactly the effective config the parent computed.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, config.FileName), []byte("idle_timeout = 45s\nlog_level = debug\n"), 0o600)
	env := []string{"CHATD_PING_INTERVAL=20s", "CHATD_MAX_MESSAGE=128KiB"}
	args := append([]string{"daemon"}, addrFlags(dir)...)
	args = append(args, "--history-limit", "77")

	r := runBin(t, env, chatdBin, args...)
	if r.code != 0 {
		t.Fatalf("chatd daemon: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// The parent has exited (runBin waited for it); the daemon lives on.
	ri, err := proc.ReadRunInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	pid := ri.PID
	if !strings.Contains(r.stdout, fmt.Sprintf("chatd started (pid %d)", pid)) || !strings.Contains(r.stdout, ri.HTTPURL()) {
		t.Fatalf("daemon output:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "created admin key at") {
		t.Fatalf("daemon did not announce the new admin key:\n%s", r.stdout)
	}
	if !proc.Alive(pid) {
		t.Fatal("daemon is not alive after its parent exited")
	}
	if code, _ := getHealth(t, ri); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	if sid, err := getsid(pid); err != nil || sid != pid {
		t.Fatalf("daemon session %d (%v), want its own session %d", sid, err, pid)
	}

	// Same effective config: the child logs it; compare with `chatd config`
	// run with the same arguments and environment.
	cr := runBin(t, env, chatdBin, append([]string{"config"}, args[1:]...)...)
	if cr.code != 0 {
		t.Fatalf("chatd config: %d %s", cr.code, cr.stderr)
	}
	want := parseConfigOutput(t, cr.stdout)
	got := daemonConfig(t, filepath.Join(dir, "chatd.log"))
	for k, v := range want {
		if got[k] != v {
			t.Errorf("daemon %s = %q, chatd config says %q", k, got[k], v)
		}
	}
	if got["idle_timeout"] != "45s" || got["ping_interval"] != "20s" || got["history_limit"] != "77" || got["max_message"] != "128KiB" {
		t.Errorf("layered values not applied in the daemon: %v", got)
	}

	s := runBin(t, nil, chatdBin, "status", "--data", dir)
	if s.code != 0 || !strings.Contains(s.stdout, "chatd is running") ||
		!strings.Contains(s.stdout, fmt.Sprintf("pid           %d", pid)) ||
		!strings.Contains(s.stdout, "version       v0.0.0-test") ||
		!strings.Contains(s.stdout, "http          "+ri.HTTPAddr) {
		t.Fatalf("status: exit %d\n%s%s", s.code, s.stdout, s.stderr)
	}
	sj := runBin(t, nil, chatdBin, "status", "--data", dir, "--json")
	var st struct {
		PID   int `json:"pid"`
		Conns int `json:"conns"`
	}
	if err := json.Unmarshal([]byte(sj.stdout), &st); err != nil || st.PID != pid {
		t.Fatalf("status --json: %v\n%s", err, sj.stdout)
	}

	// A second server on the same folder is refused, naming the pid.
	for _, second := range [][]string{
		append([]string{"daemon"}, addrFlags(dir)...),
		addrFlags(dir),
	} {
		r2 := runBin(t, nil, chatdBin, second...)
		if r2.code == 0 || !strings.Contains(r2.stderr, fmt.Sprintf("already running on data folder %s (pid %d)", dir, pid)) {
			t.Fatalf("second %q: exit %d\n%s%s", second, r2.code, r2.stdout, r2.stderr)
		}
	}
	if !proc.Alive(pid) {
		t.Fatal("the refused second start harmed the daemon")
	}

	// A message acknowledged before the stop must be in history after a
	// restart (the core drains its journal before the store closes).
	key, err := proc.ReadAdminKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin := &apiclient.Client{BaseURL: ri.HTTPURL(), AdminKey: key}
	app, err := admin.CreateApp(ctx, "shop", "Shop")
	if err != nil {
		t.Fatal(err)
	}
	cl := &apiclient.Client{BaseURL: ri.HTTPURL(), App: app.ID, Secret: app.Secret}
	for _, uid := range []string{"u1", "u2"} {
		if _, err := cl.PushUser(ctx, apiclient.PushUserInput{UID: uid, Nickname: uid}); err != nil {
			t.Fatal(err)
		}
	}
	var acked []apiclient.SendResult
	for i := range 20 {
		r, err := cl.Send(ctx, apiclient.SendInput{From: "u1", To: "u2", Type: "text",
			Content: json.RawMessage(fmt.Sprintf(`{"text":"m%d"}`, i))})
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, r)
	}

	st0 := runBin(t, nil, chatdBin, "stop", "--data", dir)
	if st0.code != 0 || !strings.Contains(st0.stdout, fmt.Sprintf("stopped chatd (pid %d) after", pid)) {
		t.Fatalf("stop: exit %d\n%s%s", st0.code, st0.stdout, st0.stderr)
	}
	if proc.Alive(pid) {
		t.Fatal("daemon still alive after stop")
	}
	s2 := runBin(t, nil, chatdBin, "status", "--data", dir)
	if s2.code != 3 || s2.stdout != "chatd is not running (data folder "+dir+")\n" || s2.stderr != "" {
		t.Fatalf("status after stop: exit %d\n%s%s", s2.code, s2.stdout, s2.stderr)
	}
	s3 := runBin(t, nil, chatdBin, "stop", "--data", dir)
	if s3.code != 3 || !strings.Contains(s3.stdout, "not running") {
		t.Fatalf("stop when stopped: exit %d\n%s%s", s3.code, s3.stdout, s3.stderr)
	}

	r = runBin(t, nil, chatdBin, append([]string{"daemon"}, addrFlags(dir)...)...)
	if r.code != 0 {
		t.Fatalf("restart: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	ri2 := waitRunInfo(t, dir, 0)
	cl.BaseURL = ri2.HTTPURL()
	msgs, err := cl.History(ctx, acked[0].Session, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != len(acked) {
		t.Fatalf("history after restart has %d messages, %d were acknowledged", len(msgs), len(acked))
	}
	for i, m := range msgs {
		if m.Seq != acked[i].Seq || string(m.Content) != fmt.Sprintf(`{"text":"m%d"}`, i) {
			t.Fatalf("message %d after restart: %+v", i, m)
		}
	}
	if st := runBin(t, nil, chatdBin, "stop", "--data", dir); st.code != 0 {
		t.Fatalf("second stop: exit %d\n%s%s", st.code, st.stdout, st.stderr)
	}

	if out, _ := os.ReadFile(filepath.Join(dir, proc.OutFile)); bytes.Contains(out, []byte("DATA RACE")) {
		t.Fatalf("the daemon reported a data race:\n%s", out)
	}

	// The daemon logged JSON lines, including its stop.
	logb, _ := os.ReadFile(filepath.Join(dir, "chatd.log"))
	if !bytes.Contains(logb, []byte(`"message":"chatd stopped"`)) {
		t.Fatalf("daemon log lacks the stop line:\n%s", logb)
	}
}

// parseConfigOutput reads `chatd config` lines: name = value # source.
func parseConfigOutput(t *testing.T, out string) map[string]string {
	t.Helper()
	entries, err := config.ParseFile("chatd config", []byte(out))
	if err != nil {
		t.Fatalf("chatd config output does not parse: %v\n%s", err, out)
	}
	m := map[string]string{}
	for _, e := range entries {
		m[e.Key] = e.Value
	}
	if len(m) != len(config.Settings()) {
		t.Fatalf("chatd config printed %d settings, want %d", len(m), len(config.Settings()))
	}
	return m
}

// daemonConfig finds the daemon's "effective config" log line.
func daemonConfig(t *testing.T, logPath string) map[string]string {
	t.Helper()
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Message string            `json:"message"`
			Config  map[string]string `json:"config"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Config != nil {
			return line.Config
		}
	}
	t.Fatalf("no effective config line in %s", logPath)
	return nil
}

func TestDaemonStartFailureShowsLog(t *testing.T) {
	dir := newDataDir(t)
	// Another server occupies the port, so the daemon's HTTP listener fails.
	blockDir := newDataDir(t)
	blocker := startForeground(t, nil, addrFlags(blockDir)...)
	bri := waitRunInfo(t, blockDir, blocker.cmd.Process.Pid)
	r := runBin(t, nil, chatdBin, "daemon", "--data", dir, "--ws-addr", "127.0.0.1:0", "--http-addr", bri.HTTPAddr, "--wait", "20s")
	if r.code != 1 || !strings.Contains(r.stderr, "exited during startup") || !strings.Contains(r.stderr, "last lines of") ||
		!strings.Contains(r.stderr, "address already in use") {
		t.Fatalf("daemon on a busy port: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	blocker.cmd.Process.Signal(syscall.SIGTERM)
	blocker.wait(t, 30*time.Second)
}

func TestConfigCommandHidesSecrets(t *testing.T) {
	dir := newDataDir(t)
	key := strings.Repeat("ab", 32)
	r := runBin(t, []string{"CHATD_ADMIN_KEY=" + key}, chatdBin, "config", "--data", dir)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, key) {
		t.Fatalf("chatd config shows the admin key:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "= ***") || !strings.Contains(r.stdout, "env CHATD_ADMIN_KEY") {
		t.Fatalf("chatd config does not show the hidden key and its source:\n%s", r.stdout)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("chatd config created the data folder")
	}
}

func TestInvalidSettingStopsStartup(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		want string
		// command: args start with a command word, so they go first.
		command bool
	}{
		{name: "env duration", env: []string{"CHATD_IDLE_TIMEOUT=abc"}, want: `CHATD_IDLE_TIMEOUT: invalid duration "abc"`},
		{name: "flag address", args: []string{"--ws-addr", "nowhere"}, want: `--ws-addr: invalid address "nowhere"`},
		{name: "unknown flag", args: []string{"--bogus"}, want: `flag provided but not defined: -bogus`},
		{name: "unknown command", args: []string{"restart"}, want: `unknown command "restart"`, command: true},
		{name: "daemon env size", env: []string{"CHATD_MAX_OUTBOUND=lots"}, args: []string{"daemon"},
			want: `CHATD_MAX_OUTBOUND: invalid size "lots"`, command: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := newDataDir(t)
			args := append(addrFlags(dir), tt.args...)
			if tt.command { // the command word comes first
				args = append(tt.args, addrFlags(dir)...)
			}
			r := runBin(t, tt.env, chatdBin, args...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 2 and %q", r.code, r.stderr, tt.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("a refused start touched the data folder")
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"-h"}} {
		r := runBin(t, nil, chatdBin, args...)
		if r.code != 0 {
			t.Fatalf("%q: exit %d", args, r.code)
		}
		for _, want := range []string{"chatd daemon", "chatd stop", "chatd status", "chatd config", "chatd version",
			"--wait duration", "--timeout duration", "--json"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%q lacks %q", args, want)
			}
		}
		for _, s := range config.Settings() {
			def := s.Default
			if def == "" {
				def = `""`
			}
			if !strings.Contains(r.stdout, "--"+s.Flag()) || !strings.Contains(r.stdout, "(default "+def+"; env "+s.Env()+")") {
				t.Errorf("%q lacks setting %s with its default", args, s.Name)
			}
		}
	}
	r := runBin(t, nil, chatdBin, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "chatd v0.0.0-test (go") {
		t.Fatalf("version: %d %q", r.code, r.stdout)
	}
}

func TestStopFallsBackToSIGTERM(t *testing.T) {
	dir := newDataDir(t)
	f := startForeground(t, nil, addrFlags(dir)...)
	waitRunInfo(t, dir, f.cmd.Process.Pid)
	// A wrong admin key makes the control call fail (401): stop must fall
	// back to SIGTERM and still stop the server cleanly.
	r := runBin(t, []string{"CHATD_ADMIN_KEY=" + strings.Repeat("0", 64)}, chatdBin, "stop", "--data", dir)
	if r.code != 0 || !strings.Contains(r.stderr, "sending SIGTERM to pid "+strconv.Itoa(f.cmd.Process.Pid)) ||
		!strings.Contains(r.stdout, "stopped chatd") {
		t.Fatalf("stop: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if code := f.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("server exit %d", code)
	}
}

// TestAdminKeyKeptOutOfArgs starts a daemon with --admin-key, as an
// operator might: the key must not reach the daemon's argument list (the
// process list), chatd.out, the log or /debug/pprof/cmdline; the daemon
// must still use it.
func TestAdminKeyKeptOutOfArgs(t *testing.T) {
	dir := newDataDir(t)
	key := "kept-out-of-args-" + strings.Repeat("9f", 16)
	r := runBin(t, nil, chatdBin, append([]string{"daemon", "--admin-key", key}, addrFlags(dir)...)...)
	if r.code != 0 {
		t.Fatalf("chatd daemon: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "warning: the admin key was given on the command line") {
		t.Errorf("no warning about the key on the command line:\n%s", r.stderr)
	}
	ri := waitRunInfo(t, dir, 0)
	defer func() {
		if st := runBin(t, []string{"CHATD_ADMIN_KEY=" + key}, chatdBin, "stop", "--data", dir); st.code != 0 {
			t.Errorf("stop: exit %d\n%s%s", st.code, st.stdout, st.stderr)
		}
	}()
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", ri.PID))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(cmdline, []byte(key)) {
		t.Errorf("the daemon's argument list holds the key: %q", cmdline)
	}
	if !bytes.Contains(cmdline, []byte("daemon\x00--data")) {
		t.Errorf("the daemon's arguments lost more than the key: %q", cmdline)
	}
	out, _ := os.ReadFile(filepath.Join(dir, proc.OutFile))
	if bytes.Contains(out, []byte(key)) {
		t.Errorf("%s holds the key:\n%s", proc.OutFile, out)
	}
	resp, err := http.Get(ri.HTTPURL() + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || bytes.Contains(page, []byte(key)) {
		t.Errorf("/debug/pprof/cmdline: %d %q", resp.StatusCode, page)
	}
	// The daemon runs with the key it was given (and not a generated one).
	admin := &apiclient.Client{BaseURL: ri.HTTPURL(), AdminKey: key}
	if _, err := admin.Status(context.Background()); err != nil {
		t.Fatalf("status signed with the given key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, proc.AdminKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an admin.key was created although a key was given: %v", err)
	}
	logb, _ := os.ReadFile(filepath.Join(dir, "chatd.log"))
	if bytes.Contains(logb, []byte(key)) {
		t.Errorf("the log holds the key")
	}
}

// TestPprofCmdlineRedactsForeground: a foreground server given the key as
// a flag has it in its own argument list (the help says so), but does not
// serve it.
func TestPprofCmdlineRedactsForeground(t *testing.T) {
	dir := newDataDir(t)
	key := "foreground-key-" + strings.Repeat("7e", 16)
	f := startForeground(t, nil, append([]string{"--admin-key=" + key}, addrFlags(dir)...)...)
	ri := waitRunInfo(t, dir, f.cmd.Process.Pid)
	resp, err := http.Get(ri.HTTPURL() + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || bytes.Contains(page, []byte(key)) || !bytes.Contains(page, []byte("--admin-key=***")) {
		t.Errorf("/debug/pprof/cmdline: %d %q", resp.StatusCode, page)
	}
	f.cmd.Process.Signal(syscall.SIGTERM)
	if code := f.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, f.stderr.String())
	}
	if !strings.Contains(f.stderr.String(), "the admin key was given on the command line") {
		t.Errorf("no warning about the key on the command line:\n%s", f.stderr.String())
	}
	if strings.Contains(f.stderr.String(), key) {
		t.Errorf("the log shows the key")
	}
}
