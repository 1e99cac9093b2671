//go:build linux

package main

// End-to-end tests of `chatctl subscribe`: the test binary re-runs itself
// as chatctl (see init) so that subscribers are real processes, against a
// real chatd built by TestMain.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"chatd/chat"
)

// asChatctl makes the test binary behave as chatctl when set.
const asChatctl = "CHATCTL_TEST_RUN_AS_CHATCTL"

func init() {
	if os.Getenv(asChatctl) == "1" {
		main()
		os.Exit(0)
	}
}

// subProc is a `chatctl subscribe` process.
type subProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan string // stdout lines
	stderr *lockedBuffer
	done   chan struct{}
}

func startSubscriber(t *testing.T, dir string, args ...string) *subProc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &subProc{t: t, lines: make(chan string, 4096), stderr: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(self, append([]string{"subscribe"}, args...)...)
	p.cmd.Env = append(noChatdEnv(), asChatctl+"=1", "CHATD_DATA_DIR="+dir)
	p.cmd.Stderr = p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	p.waitStderr("subscribed to ", 30*time.Second)
	return p
}

// waitStderr waits until stderr contains s.
func (p *subProc) waitStderr(s string, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.stderr.String(), s) {
		select {
		case <-p.done:
			p.t.Fatalf("chatctl subscribe exited; stderr:\n%s", p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("stderr lacks %q after %s:\n%s", s, d, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// until collects stdout lines up to and including the first for which
// stop is true.
func (p *subProc) until(d time.Duration, stop func(string) bool) []string {
	p.t.Helper()
	var out []string
	timeout := time.After(d)
	for {
		select {
		case l := <-p.lines:
			out = append(out, l)
			if stop(l) {
				return out
			}
		case <-timeout:
			p.t.Fatalf("no matching line in %s; got:\n%s\nstderr:\n%s", d, strings.Join(out, "\n"), p.stderr.String())
		}
	}
}

// interrupt sends Ctrl-C and checks a clean, prompt exit.
func (p *subProc) interrupt() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Fatal("chatctl subscribe did not exit on Ctrl-C")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Fatalf("exit code %d after Ctrl-C; stderr:\n%s", code, p.stderr.String())
	}
}

// event decodes a --json line.
func event(t *testing.T, l string) chat.Event {
	t.Helper()
	var e chat.Event
	if err := json.Unmarshal([]byte(l), &e); err != nil {
		t.Fatalf("--json line is not JSON: %q", l)
	}
	return e
}

// textOf is a message event's text ("" for other lines).
func textOf(t *testing.T, l string) string {
	e := event(t, l)
	if e.Topic != chat.TopicMessage || e.Message == nil {
		return ""
	}
	var c struct{ Text string }
	json.Unmarshal(e.Message.Content, &c)
	return c.Text
}

func TestSubscribeEndToEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, dir)
	base := map[string]string{"CHATD_DATA_DIR": dir}
	var app struct{ ID, Secret string }
	mustJSON(t, base, &app, "app", "create", "--id", "shop", "--name", "Shop")
	creds := map[string]string{"CHATD_DATA_DIR": dir, "CHATD_APP": app.ID, "CHATD_SECRET": app.Secret}
	for _, uid := range []string{"u1", "u2", "u3"} {
		if _, _, err := ctl(t, creds, "user", "push", "--uid", uid); err != nil {
			t.Fatal(err)
		}
	}
	send := func(from, to, text string) {
		t.Helper()
		if _, _, err := ctl(t, creds, "send", "--from", from, "--to", to, "--text", text); err != nil {
			t.Fatal(err)
		}
	}

	u1 := startSubscriber(t, dir, "--json", "all;uid=u1")
	u2 := startSubscriber(t, dir, "--json", "all;uid=u2")
	human := startSubscriber(t, dir, "message", "serverInfo")
	for _, p := range []*subProc{u1, u2} {
		if e := event(t, p.until(5*time.Second, func(string) bool { return true })[0]); e.Topic != "hello" {
			t.Fatalf("first --json line is %q, want the hello", e.Topic)
		}
	}

	send("u1", "u3", "from u1")
	send("u3", "u2", "to u2")
	send("u1", "u2", "last") // reaches both streams: everything before it has too
	isLast := func(l string) bool { return textOf(t, l) == "last" }
	texts := func(lines []string) string {
		var out []string
		for _, l := range lines {
			if s := textOf(t, l); s != "" {
				out = append(out, s)
			}
		}
		return strings.Join(out, ",")
	}
	if got := texts(u1.until(10*time.Second, isLast)); got != "from u1,last" {
		t.Errorf(`"all;uid=u1" saw messages %q, want "from u1,last"`, got)
	}
	if got := texts(u2.until(10*time.Second, isLast)); got != "to u2,last" {
		t.Errorf(`"all;uid=u2" saw messages %q, want "to u2,last"`, got)
	}

	// The readable output: one line per message, and a serverInfo block
	// within a few seconds (published every 2 s).
	msgLine := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} message  shop  u1 → \[u3\]  s\d+#1 text "from u1"$`)
	human.until(10*time.Second, msgLine.MatchString)
	infoLine := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} serverInfo  chatd \S+  up \S+$`)
	block := human.until(10*time.Second, infoLine.MatchString)
	rest := human.until(5*time.Second, func(l string) bool { return strings.HasPrefix(l, "  journal ") })
	if len(rest) != 2 || !strings.HasPrefix(rest[0], "  conns ") || !strings.Contains(rest[1], "goroutines ") {
		t.Fatalf("serverInfo block:\n%s\n%s", block[len(block)-1], strings.Join(rest, "\n"))
	}

	// Restart the server on the same data folder (new ports): the
	// subscribers say so, reconnect by themselves and receive events again.
	srv.stop(t)
	for _, p := range []*subProc{u1, u2, human} {
		p.waitStderr("disconnected: server shutting down; reconnecting", 10*time.Second)
	}
	startServer(t, dir)
	for _, p := range []*subProc{u1, u2, human} {
		p.waitStderr("reconnected to http://127.0.0.1:", 15*time.Second)
	}
	send("u1", "u3", "after restart")
	if got := texts(u1.until(10*time.Second, func(l string) bool { return textOf(t, l) == "after restart" })); got != "after restart" {
		t.Fatalf("after the restart u1's stream saw %q", got)
	}
	human.until(10*time.Second, func(l string) bool { return strings.HasSuffix(l, `text "after restart"`) })

	for _, p := range []*subProc{u1, u2, human} {
		p.interrupt()
	}
}

func TestSubscribeNoServer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	_, _, err := ctl(t, map[string]string{"CHATD_DATA_DIR": dir}, "subscribe", "all")
	if err == nil || !strings.Contains(err.Error(), "no running chatd found") {
		t.Fatalf("subscribe with no server: %v", err)
	}
}

// lockedBuffer collects a process's stderr.
type lockedBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
