//go:build unix

package proc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a helper process: with helperEnv set it
// becomes a fake server that holds a data folder (see helperMain).
const helperEnv = "PROC_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" || IsDaemonChild() {
		os.Exit(helperMain(mode))
	}
	os.Exit(m.Run())
}

// helperMain holds the lock of the data folder named by os.Args' last
// element, publishes chatd.run ("fail" mode exits 3 instead) and runs until
// SIGTERM.
func helperMain(mode string) int {
	dir := os.Args[len(os.Args)-1]
	if mode == "fail" {
		fmt.Fprintln(os.Stderr, "helper: failing on purpose")
		return 3
	}
	ctx, stop := signal.NotifyContext(context.Background(), ShutdownSignals...)
	defer stop()
	l, err := Acquire(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	if mode != "silent" {
		if err := WriteRunInfo(dir, RunInfo{PID: os.Getpid(), HTTPAddr: "127.0.0.1:1", DataDir: dir}); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 1
		}
	}
	fmt.Println("ready")
	<-ctx.Done()
	RemoveRunInfo(dir)
	if err := l.Release(); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

// startHelper runs the fake server on dir and waits until it holds the
// lock. A goroutine reaps it (so Alive sees it gone once it exits); done
// closes then.
func startHelper(t *testing.T, dir string) (cmd *exec.Cmd, done <-chan struct{}) {
	t.Helper()
	cmd = exec.Command(os.Args[0], "-test.run=^$", dir)
	cmd.Env = append(os.Environ(), helperEnv+"=hold")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{})
	go func() { cmd.Wait(); close(ch) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-ch })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ri, err := ReadRunInfo(dir); err == nil && ri.PID == cmd.Process.Pid {
			return cmd, ch
		}
		if time.Now().After(deadline) {
			t.Fatal("helper did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLockAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	cmd, _ := startHelper(t, dir)
	pid := cmd.Process.Pid

	held, gotPID, err := Probe(dir)
	if err != nil || !held || gotPID != pid {
		t.Fatalf("Probe = %v, %d, %v; want held by %d", held, gotPID, err, pid)
	}
	_, err = Acquire(dir)
	var re *RunningError
	if !errors.As(err, &re) || re.PID != pid {
		t.Fatalf("second Acquire = %v, want RunningError naming pid %d", err, pid)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("(pid %d)", pid)) || !strings.Contains(msg, dir) {
		t.Fatalf("message %q does not name the pid and folder", msg)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := WaitExit(ctx, dir, pid); err != nil {
		t.Fatalf("WaitExit: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, PIDFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("pid file left after a clean exit: %v", err)
	}
	l, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after exit: %v", err)
	}
	if got, _ := ReadPID(dir); got != os.Getpid() {
		t.Fatalf("pid file = %d, want ours %d", got, os.Getpid())
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestLockReleasedOnKill(t *testing.T) {
	dir := t.TempDir()
	cmd, done := startHelper(t, dir)
	cmd.Process.Kill()
	<-done
	// The pid file is stale; the OS dropped the lock.
	held, _, err := Probe(dir)
	if err != nil || held {
		t.Fatalf("Probe after kill = %v, %v; want free", held, err)
	}
	l, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire over a stale pid file: %v", err)
	}
	l.Release()
}

func TestProbeNeverStarted(t *testing.T) {
	held, pid, err := Probe(t.TempDir())
	if held || pid != 0 || err != nil {
		t.Fatalf("Probe on an empty folder = %v, %d, %v", held, pid, err)
	}
}

func TestAcquireInProcessTwice(t *testing.T) {
	// flock locks belong to the open file, so a second open in the same
	// process conflicts too: a server cannot open its folder twice.
	dir := t.TempDir()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	var re *RunningError
	if _, err := Acquire(dir); !errors.As(err, &re) || re.PID != os.Getpid() {
		t.Fatalf("second Acquire = %v, want RunningError with our pid", err)
	}
}

func TestAdminKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := PrepareDataDir(dir); err != nil {
		t.Fatal(err)
	}
	key, created, err := EnsureAdminKey(dir)
	if err != nil || !created {
		t.Fatalf("first EnsureAdminKey = %v, %v", created, err)
	}
	if len(key) != 64 || strings.Trim(key, "0123456789abcdef") != "" {
		t.Fatalf("key %q is not 64 hex digits", key)
	}
	// The file is unix-only (build constraint), so modes are checked.
	st, _ := os.Stat(filepath.Join(dir, AdminKeyFile))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("admin.key mode %v, want 0600", st.Mode().Perm())
	}
	dst, _ := os.Stat(dir)
	if dst.Mode().Perm() != 0o700 {
		t.Fatalf("data folder mode %v, want 0700", dst.Mode().Perm())
	}
	if AdminKeyTooOpen(dir) {
		t.Fatal("AdminKeyTooOpen on a 0600 file")
	}
	os.Chmod(filepath.Join(dir, AdminKeyFile), 0o644)
	if !AdminKeyTooOpen(dir) {
		t.Fatal("AdminKeyTooOpen false on a 0644 file")
	}
	again, created, err := EnsureAdminKey(dir)
	if err != nil || created || again != key {
		t.Fatalf("second EnsureAdminKey = %q, %v, %v; want the same key, not created", again, created, err)
	}
}

func TestReadAdminKeyErrors(t *testing.T) {
	tests := []struct {
		name    string
		content *string
		want    string
	}{
		{name: "missing", want: "no such file"},
		{name: "too short", content: ptr("abc\n"), want: "does not hold a key"},
		{name: "two words", content: ptr("0123456789abcdef0123456789abcdef 0123\n"), want: "does not hold a key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.content != nil {
				os.WriteFile(filepath.Join(dir, AdminKeyFile), []byte(*tt.content), 0o600)
			}
			_, err := ReadAdminKey(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, AdminKeyFile), []byte("  0123456789abcdef0123456789abcdef\r\n"), 0o600)
	if k, err := ReadAdminKey(dir); err != nil || k != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("ReadAdminKey trims: %q, %v", k, err)
	}
}

func ptr(s string) *string { return &s }

func TestRunInfoRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadRunInfo(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing run file: %v", err)
	}
	in := RunInfo{PID: 42, WSAddr: "[::]:22886", HTTPAddr: "[::]:22887", Version: "v1",
		StartedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), DataDir: dir, LogFile: "x.log"}
	if err := WriteRunInfo(dir, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadRunInfo(dir)
	if err != nil || out != in {
		t.Fatalf("ReadRunInfo = %+v, %v", out, err)
	}
	if got := out.HTTPURL(); got != "http://127.0.0.1:22887" {
		t.Fatalf("HTTPURL = %q", got)
	}
	if err := RemoveRunInfo(dir); err != nil {
		t.Fatal(err)
	}
	if err := RemoveRunInfo(dir); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestLocalAddr(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "empty host", in: ":22887", want: "127.0.0.1:22887"},
		{name: "ipv4 any", in: "0.0.0.0:1", want: "127.0.0.1:1"},
		{name: "ipv6 any", in: "[::]:2", want: "127.0.0.1:2"},
		{name: "loopback kept", in: "127.0.0.5:3", want: "127.0.0.5:3"},
		{name: "ipv6 loopback kept", in: "[::1]:4", want: "[::1]:4"},
		{name: "name kept", in: "chat.local:5", want: "chat.local:5"},
		{name: "garbage passes through", in: "nope", want: "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LocalAddr(tt.in); got != tt.want {
				t.Fatalf("LocalAddr(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log")
	var b strings.Builder
	for i := 1; i <= 10000; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	os.WriteFile(path, []byte(b.String()), 0o600)
	if got := Tail(path, 3); got != "line 9998\nline 9999\nline 10000" {
		t.Fatalf("Tail = %q", got)
	}
	if got := Tail(filepath.Join(dir, "none"), 3); got != "" {
		t.Fatalf("Tail of a missing file = %q", got)
	}
	os.WriteFile(path, []byte("only\n"), 0o600)
	if got := Tail(path, 3); got != "only" {
		t.Fatalf("Tail of a short file = %q", got)
	}
}

func TestAlive(t *testing.T) {
	if !Alive(os.Getpid()) {
		t.Fatal("Alive(self) = false")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$", t.TempDir())
	cmd.Env = append(os.Environ(), helperEnv+"=fail")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	// Not reaped yet: a zombie, which must count as exited.
	deadline := time.Now().Add(10 * time.Second)
	for Alive(pid) {
		if time.Now().After(deadline) {
			t.Fatal("exited (zombie) child still Alive")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Wait()
	if Alive(pid) {
		t.Fatal("reaped child Alive")
	}
	if Alive(0) || Alive(-1) {
		t.Fatal("Alive accepts non-pids")
	}
}

func TestStartDaemon(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(helperEnv, "hold")
	healthy := 0
	ri, err := StartDaemon(context.Background(), DaemonSpec{
		Args: []string{"-test.run=^$", dir}, DataDir: dir, Timeout: 10 * time.Second,
		Healthy: func(ctx context.Context, ri RunInfo) error {
			healthy++
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if Alive(ri.PID) {
			Terminate(ri.PID)
		}
	})
	if healthy != 1 || ri.PID <= 0 || ri.PID == os.Getpid() {
		t.Fatalf("ri = %+v, healthy calls %d", ri, healthy)
	}
	if sid, err := getsid(ri.PID); err == nil && sid != ri.PID {
		t.Fatalf("daemon session id %d, want its own (%d)", sid, ri.PID)
	}
	if err := Terminate(ri.PID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := WaitExit(ctx, dir, ri.PID); err != nil {
		t.Fatalf("WaitExit: %v", err)
	}
	if out, _ := os.ReadFile(filepath.Join(dir, OutFile)); !strings.Contains(string(out), "ready") {
		t.Fatalf("daemon stdout not in %s: %q", OutFile, out)
	}
}

func TestStartDaemonFails(t *testing.T) {
	tests := []struct {
		name    string
		mode    string
		healthy func(context.Context, RunInfo) error
		want    string
		exited  bool
	}{
		{name: "child exits", mode: "fail", want: "exited during startup: exit status 3", exited: true},
		{name: "never healthy", mode: "hold", healthy: func(context.Context, RunInfo) error { return errors.New("no answer") },
			want: "not ready after 500ms: no answer"},
		{name: "never publishes", mode: "silent", want: "not ready after 500ms: no chatd.run yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv(helperEnv, tt.mode)
			_, err := StartDaemon(context.Background(), DaemonSpec{
				Args: []string{"-test.run=^$", dir}, DataDir: dir, Timeout: 500 * time.Millisecond, Healthy: tt.healthy,
			})
			var se *StartError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.want) || se.Exited != tt.exited {
				t.Fatalf("err = %v, want StartError containing %q (exited %v)", err, tt.want, tt.exited)
			}
			if !se.Exited {
				Terminate(se.PID)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := WaitExit(ctx, dir, se.PID); err != nil {
					t.Fatalf("helper did not stop: %v", err)
				}
			}
			if tt.exited {
				out, _ := os.ReadFile(filepath.Join(dir, OutFile))
				if !strings.Contains(string(out), "failing on purpose") {
					t.Fatalf("stderr not captured: %q", out)
				}
			}
		})
	}
}
