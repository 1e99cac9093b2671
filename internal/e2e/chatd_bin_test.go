//go:build linux

package e2e_test

import (
	"bytes"
	"context"
	"fmt"
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

	"chatd/httpapi/apiclient"
	"chatd/internal/proc"
)

// The abuse tests run the real chatd binary, built once per test binary
// run into binDir, so that what they attack is exactly what ships: flags,
// config, wiring, the open-file limit and process exit included. They are
// Linux-only: they read VmRSS from /proc, lower the open-file limit with
// ulimit and set socket buffer sizes.
var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error

	ctlOnce  sync.Once
	ctlPath  string
	ctlError error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chatd-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// chatdBinary builds cmd/chatd on first use (without -race: the attacks
// measure the server as it ships) and returns its path.
func chatdBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binPath = filepath.Join(binDir, "chatd")
		cmd := exec.Command("go", "build", "-o", binPath, "chatd/cmd/chatd")
		if out, err := cmd.CombinedOutput(); err != nil {
			binError = fmt.Errorf("go build chatd: %v\n%s", err, out)
		}
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

// chatctlBinary builds cmd/chatctl on first use and returns its path.
func chatctlBinary(t *testing.T) string {
	t.Helper()
	ctlOnce.Do(func() {
		ctlPath = filepath.Join(binDir, "chatctl")
		if out, err := exec.Command("go", "build", "-o", ctlPath, "chatd/cmd/chatctl").CombinedOutput(); err != nil {
			ctlError = fmt.Errorf("go build chatctl: %v\n%s", err, out)
		}
	})
	if ctlError != nil {
		t.Fatal(ctlError)
	}
	return ctlPath
}

// binAdminKey is the admin key every test chatd runs with.
const binAdminKey = "e2e-binary-admin-key-0123456789abcdef0123456789abcdef"

// chatdProc is one running chatd process.
type chatdProc struct {
	t        *testing.T
	cmd      *exec.Cmd
	pid      int
	dir      string
	wsAddr   string
	httpAddr string
	admin    *apiclient.Client
	exited   chan struct{} // closed when the process has exited
	exitErr  error         // set before exited is closed
	output   *syncBuffer   // its stdout and stderr
	killed   bool          // killed on purpose (kill9): stop does nothing
}

// syncBuffer is a bytes.Buffer safe for the process's writers and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startBinary starts chatd on 127.0.0.1 port 0 with a fresh data folder
// and the given extra flags. With nofile > 0 it runs under that open-file
// limit (ulimit -n). It waits for chatd.run and stops the process (SIGTERM,
// then SIGKILL) when the test ends, checking that it exits cleanly.
func startBinary(t *testing.T, nofile int, flags ...string) *chatdProc {
	t.Helper()
	return startBinaryIn(t, t.TempDir(), nofile, flags...)
}

// startBinaryIn is startBinary on the data folder dir (a restart).
func startBinaryIn(t *testing.T, dir string, nofile int, flags ...string) *chatdProc {
	t.Helper()
	bin := chatdBinary(t)
	args := append([]string{"--data", dir, "--ws-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--admin-key", binAdminKey, "--log-level", "warn"}, flags...)
	var cmd *exec.Cmd
	if nofile > 0 {
		// ulimit in a shell that then becomes chatd, so the pid is chatd's.
		cmd = exec.Command("sh", append([]string{"-c", "ulimit -n " + strconv.Itoa(nofile) + ` && exec "$0" "$@"`, bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	p := &chatdProc{t: t, cmd: cmd, dir: dir, exited: make(chan struct{}), output: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.pid = cmd.Process.Pid
	go func() {
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.stop)

	deadline := time.Now().Add(30 * time.Second)
	for {
		ri, err := proc.ReadRunInfo(dir)
		if err == nil && ri.PID == p.pid {
			p.wsAddr, p.httpAddr = ri.WSAddr, ri.HTTPAddr
			break
		}
		select {
		case <-p.exited:
			t.Fatalf("chatd exited at start: %v\n%s", p.exitErr, p.output)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("chatd not ready in 30s:\n%s", p.output)
		}
	}
	p.admin = &apiclient.Client{BaseURL: "http://" + p.httpAddr, AdminKey: binAdminKey, HTTP: &http.Client{Timeout: 10 * time.Second}}
	return p
}

// kill9 kills the process with SIGKILL (a crash: nothing runs on the
// way out) and waits for it to be gone.
func (p *chatdProc) kill9() {
	p.killed = true
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// stop ends the process gracefully and checks that it exited with 0.
func (p *chatdProc) stop() {
	if p.killed {
		return
	}
	select {
	case <-p.exited:
		p.t.Errorf("chatd had already exited: %v\n%s", p.exitErr, tail(p.output.String(), 4000))
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.exitErr != nil {
			p.t.Errorf("chatd exit: %v\n%s", p.exitErr, tail(p.output.String(), 4000))
		}
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		p.t.Errorf("chatd did not stop within 20s of SIGTERM")
	}
}

// requireAlive fails the test if the process has exited.
func (p *chatdProc) requireAlive() {
	p.t.Helper()
	select {
	case <-p.exited:
		p.t.Fatalf("chatd exited: %v\n%s", p.exitErr, tail(p.output.String(), 4000))
	default:
	}
}

// rssKiB is the process's resident memory (VmRSS) in KiB.
func (p *chatdProc) rssKiB() int {
	p.t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/status")
	if err != nil {
		p.t.Fatalf("read VmRSS: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				p.t.Fatalf("VmRSS line %q", line)
			}
			return n
		}
	}
	p.t.Fatal("no VmRSS in /proc/PID/status")
	return 0
}

// memory logs VmRSS around an attack: call it before, and call the
// function it returns after.
func (p *chatdProc) memory(attack string) func() {
	before := p.rssKiB()
	return func() {
		after := p.rssKiB()
		p.t.Logf("memory %s: VmRSS before %d KiB, after %d KiB (%+d KiB)", attack, before, after, after-before)
	}
}

// status is the admin status (connections held, users online).
func (p *chatdProc) status() apiclient.Status {
	p.t.Helper()
	st, err := p.admin.Status(context.Background())
	if err != nil {
		p.t.Fatalf("admin status: %v", err)
	}
	return st
}

// app creates an app and returns a client signed with its secret.
func (p *chatdProc) app(id string) *apiclient.Client {
	p.t.Helper()
	a, err := p.admin.CreateApp(context.Background(), id, id)
	if err != nil {
		p.t.Fatal(err)
	}
	return &apiclient.Client{BaseURL: "http://" + p.httpAddr, App: a.ID, Secret: a.Secret, HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// waitConns waits until the server holds exactly n connections.
func (p *chatdProc) waitConns(n int, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := p.status()
		if st.Conns == n {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("server holds %d connections after %v, want %d", st.Conns, timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
