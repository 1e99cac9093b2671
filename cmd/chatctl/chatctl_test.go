//go:build linux

package main

// chatctl runs in-process (run) against a real chatd process built once by
// TestMain and started per test on 127.0.0.1 port 0.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatd/internal/proc"
)

var chatdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chatctl-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	chatdBin = filepath.Join(dir, "chatd")
	if out, err := exec.Command("go", "build", "-o", chatdBin, "chatd/cmd/chatd").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build chatd: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a foreground chatd on its own data folder.
type server struct {
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	ri   proc.RunInfo
}

func startServer(t *testing.T, dir string) *server {
	t.Helper()
	s := &server{dir: dir, done: make(chan struct{})}
	s.cmd = exec.Command(chatdBin, "--data", dir, "--ws-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	s.cmd.Env = noChatdEnv()
	var stderr bytes.Buffer
	s.cmd.Stderr = &stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		ri, err := proc.ReadRunInfo(dir)
		if err == nil && ri.PID == s.cmd.Process.Pid {
			s.ri = ri
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("chatd exited during startup:\n%s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("chatd did not publish chatd.run")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop stops the server gracefully with `chatd stop` (the admin control
// endpoint) and waits for the process to exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	out, err := exec.Command(chatdBin, "stop", "--data", s.dir).CombinedOutput()
	if err != nil {
		t.Fatalf("chatd stop: %v\n%s", err, out)
	}
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("chatd did not exit after stop")
	}
}

func noChatdEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHATD_") {
			out = append(out, kv)
		}
	}
	return out
}

// ctl runs chatctl in-process with env as its only CHATD_ environment.
func ctl(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = run(ctx, args, &out, &errb, lookup)
	return out.String(), errb.String(), err
}

// mustJSON runs chatctl with --json and decodes its output into v.
func mustJSON(t *testing.T, env map[string]string, v any, args ...string) {
	t.Helper()
	out, _, err := ctl(t, env, append(args, "--json")...)
	if err != nil {
		t.Fatalf("chatctl %q: %v", args, err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("chatctl %q: output is not JSON: %v\n%s", args, err, out)
	}
}

func TestWalkthrough(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, dir)
	base := map[string]string{"CHATD_DATA_DIR": dir}

	// app create: human output names id and secret.
	out, _, err := ctl(t, base, "app", "create", "--name", "My Shop", "--id", "shop")
	if err != nil {
		t.Fatal(err)
	}
	var app struct{ ID, Name, Secret string }
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "id" {
			app.ID = f[1]
		}
		if len(f) == 2 && f[0] == "secret" {
			app.Secret = f[1]
		}
	}
	if app.ID != "shop" || len(app.Secret) < 16 {
		t.Fatalf("app create output:\n%s", out)
	}
	// Its next command runs as printed, with nothing from the environment.
	_, hint, _ := strings.Cut(out, "next, push a user and get a chat token (README.md, step 3):\n  ")
	args := strings.Fields(hint)
	if len(args) == 0 || args[0] != "chatctl" || !strings.Contains(hint, " --data "+dir+" ") {
		t.Fatalf("app create suggests no user push with the data folder:\n%s", out)
	}
	if out, _, err := ctl(t, nil, args[1:]...); err != nil || !strings.Contains(out, "user alice (Alice) saved") || !strings.Contains(out, "token   ") {
		t.Fatalf("the suggested %q: %v\n%s", hint, err, out)
	}
	var apps []struct{ ID, Secret string }
	mustJSON(t, base, &apps, "app", "list")
	if len(apps) != 1 || apps[0].ID != "shop" || apps[0].Secret != app.Secret {
		t.Fatalf("app list = %+v", apps)
	}

	creds := map[string]string{"CHATD_DATA_DIR": dir, "CHATD_APP": app.ID, "CHATD_SECRET": app.Secret}
	out, _, err = ctl(t, creds, "user", "push", "--uid", "u1", "--nickname", "Alice", "--token")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "user u1 (Alice) saved") || !strings.Contains(out, "token   ") {
		t.Fatalf("user push output:\n%s", out)
	}
	var pushed struct {
		User struct {
			UID      string `json:"uid"`
			Nickname string `json:"nickname"`
		} `json:"user"`
		Token string `json:"token"`
	}
	// Flags instead of env for the credentials.
	mustJSON(t, base, &pushed, "user", "push", "--app", app.ID, "--secret", app.Secret, "--uid", "u2", "--nickname", "Bob", "--token", "--ttl", "1h")
	if pushed.User.UID != "u2" || pushed.Token == "" {
		t.Fatalf("user push --json = %+v", pushed)
	}

	var sent struct {
		Session   uint64 `json:"session_id"`
		Seq       uint64 `json:"seq"`
		Duplicate bool   `json:"duplicate"`
	}
	mustJSON(t, creds, &sent, "send", "--from", "u1", "--to", "u2", "--text", "hi bob", "--cid", "c-1")
	if sent.Session == 0 || sent.Seq != 1 || sent.Duplicate {
		t.Fatalf("send = %+v", sent)
	}
	private := sent.Session
	mustJSON(t, creds, &sent, "send", "--from", "u1", "--to", "u2", "--text", "hi bob", "--cid", "c-1")
	if sent.Seq != 1 || !sent.Duplicate {
		t.Fatalf("retried send = %+v, want the original (duplicate)", sent)
	}
	mustJSON(t, creds, &sent, "send", "--from", "u2", "--session", fmt.Sprint(private), "--type", "image", "--content", `{"url":"https://x.example/a.png"}`)
	if sent.Seq != 2 {
		t.Fatalf("send to session = %+v", sent)
	}

	var group struct {
		ID   uint64 `json:"id"`
		Name string `json:"name"`
	}
	mustJSON(t, creds, &group, "group", "create", "--owner", "u1", "--name", "team", "--members", "u2")
	if group.ID == 0 || group.ID == private || group.Name != "team" {
		t.Fatalf("group create = %+v", group)
	}
	out, _, err = ctl(t, creds, "send", "--from", "u2", "--session", fmt.Sprint(group.ID), "--text", "hello team")
	if err != nil || !strings.Contains(out, fmt.Sprintf("sent: session %d seq 1", group.ID)) {
		t.Fatalf("send to group: %v\n%s", err, out)
	}

	out, _, err = ctl(t, creds, "history", "--session", fmt.Sprint(private))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `u1           text   {"text":"hi bob"}`) || !strings.Contains(out, `{"url":"https://x.example/a.png"}`) {
		t.Fatalf("history:\n%s", out)
	}

	var grant struct {
		Token string `json:"token"`
	}
	mustJSON(t, creds, &grant, "token", "issue", "--uid", "u1")
	var rev struct {
		Revoked bool `json:"revoked"`
	}
	mustJSON(t, creds, &rev, "token", "revoke", "--token", grant.Token)
	if grant.Token == "" || !rev.Revoked {
		t.Fatalf("token issue/revoke: %+v %+v", grant, rev)
	}
	if out, _, err = ctl(t, creds, "token", "revoke", "--uid", "u2"); err != nil || !strings.Contains(out, "revoked;") {
		t.Fatalf("token revoke --uid: %v %s", err, out)
	}

	var st struct {
		PID int `json:"pid"`
	}
	mustJSON(t, base, &st, "status")
	if st.PID != srv.cmd.Process.Pid {
		t.Fatalf("status pid %d, want %d", st.PID, srv.cmd.Process.Pid)
	}

	// Every acknowledged message survives a stop and a restart.
	srv.stop(t)
	if _, _, err := ctl(t, creds, "history", "--session", fmt.Sprint(private)); err == nil ||
		!strings.Contains(err.Error(), "no running chatd found in data folder") {
		t.Fatalf("history with the server stopped: %v", err)
	}
	startServer(t, dir)
	var msgs []struct {
		Seq     uint64 `json:"seq"`
		From    string `json:"from"`
		Content struct {
			Text string `json:"text"`
		} `json:"content"`
	}
	mustJSON(t, creds, &msgs, "history", "--session", fmt.Sprint(private))
	if len(msgs) != 2 || msgs[0].Content.Text != "hi bob" || msgs[1].From != "u2" {
		t.Fatalf("history after restart = %+v", msgs)
	}
}

func TestLocatingTheServer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, dir)
	key, err := proc.ReadAdminKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir() // no chatd.run, no admin.key
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{name: "data folder", env: map[string]string{"CHATD_DATA_DIR": dir}},
		{name: "--data flag", args: []string{"--data", dir}},
		{name: "--http host:port and --admin-key", args: []string{"--data", elsewhere, "--http", srv.ri.HTTPAddr, "--admin-key", key}},
		{name: "env URL and key", env: map[string]string{"CHATD_DATA_DIR": elsewhere, "CHATD_HTTP": srv.ri.HTTPURL() + "/", "CHATD_ADMIN_KEY": key}},
		{name: "flag beats env", env: map[string]string{"CHATD_HTTP": "http://127.0.0.1:1"}, args: []string{"--data", dir, "--http", srv.ri.HTTPURL()}},
		{name: "no server in folder", args: []string{"--data", elsewhere}, wantErr: "no running chatd found in data folder " + elsewhere},
		{name: "no admin key", args: []string{"--data", elsewhere, "--http", srv.ri.HTTPAddr}, wantErr: "pass --admin-key or set CHATD_ADMIN_KEY"},
		{name: "wrong admin key", args: []string{"--data", dir, "--admin-key", strings.Repeat("0", 64)}, wantErr: "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st struct {
				PID int `json:"pid"`
			}
			out, _, err := ctl(t, tt.env, append([]string{"status", "--json"}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if json.Unmarshal([]byte(out), &st) != nil || st.PID != srv.cmd.Process.Pid {
				t.Fatalf("status output %q", out)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	startServer(t, dir)
	creds := map[string]string{"CHATD_DATA_DIR": dir, "CHATD_APP": "a", "CHATD_SECRET": "s"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "unknown command", args: []string{"frobnicate"}, want: `unknown command "frobnicate"`},
		{name: "unknown subcommand", args: []string{"app", "delete"}, want: `unknown command "app delete"`},
		{name: "unknown flag", args: []string{"status", "--nope"}, want: "flag provided but not defined: -nope"},
		{name: "stray argument", args: []string{"status", "extra"}, want: `unexpected argument "extra"`},
		{name: "app create without name", args: []string{"app", "create"}, want: "--name is required"},
		{name: "user push without uid", env: creds, args: []string{"user", "push"}, want: "--uid is required"},
		{name: "app call without credentials", env: map[string]string{"CHATD_DATA_DIR": dir}, args: []string{"user", "push", "--uid", "u"}, want: "needs the app's credentials: --app and --secret"},
		{name: "send without target", env: creds, args: []string{"send", "--from", "u", "--text", "x"}, want: "exactly one of --to and --session"},
		{name: "send with both bodies", env: creds, args: []string{"send", "--to", "u", "--text", "x", "--content", "{}"}, want: "--text or --content, not both"},
		{name: "send bad JSON", env: creds, args: []string{"send", "--to", "u", "--content", "{"}, want: "--content is not valid JSON"},
		{name: "revoke needs one", env: creds, args: []string{"token", "revoke"}, want: "exactly one of --token and --uid"},
		{name: "history needs session", env: creds, args: []string{"history"}, want: "--session is required"},
		{name: "group needs owner", env: creds, args: []string{"group", "create", "--name", "x"}, want: "--owner and --name are required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ctl(t, tt.env, tt.args...)
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a usage error containing %q", err, tt.want)
			}
		})
	}
	// A server-side refusal is an API error, not a usage error.
	_, _, err := ctl(t, creds, "user", "push", "--uid", "u1")
	var ue usageError
	if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "unauthorized") {
		t.Fatalf("bad app credentials: %v", err)
	}
}

func TestHelp(t *testing.T) {
	out, _, err := ctl(t, nil, "help")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range registry {
		if !strings.Contains(out, "chatctl "+name) || !strings.Contains(out, c.summary) {
			t.Errorf("help lacks %q", name)
		}
	}
	for _, want := range []string{"--data dir", "CHATD_HTTP", "CHATD_ADMIN_KEY", "CHATD_APP", "CHATD_SECRET"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	out, _, err = ctl(t, nil, "send", "--help")
	if err != nil || !strings.Contains(out, "--cid string") || !strings.Contains(out, "--text string") {
		t.Fatalf("send --help: %v\n%s", err, out)
	}
}

// TestRegistryIsOpen pins the extension point: a command file's init adds
// a command that run dispatches to, with the shared flags parsed.
func TestRegistryIsOpen(t *testing.T) {
	called := ""
	register(&command{name: "probe only", summary: "test", positional: true, setup: func(fs *flag.FlagSet) func(context.Context, *env) error {
		filter := fs.String("filter", "", "")
		return func(_ context.Context, e *env) error {
			called = strings.Join(e.args, "+") + "|" + *filter + "@" + e.conn.data
			return nil
		}
	}})
	defer delete(registry, "probe only")
	_, _, err := ctl(t, nil, "probe", "only", "--filter", "uid=1", "--data", "/x", "message", "serverInfo")
	if err != nil || called != "message+serverInfo|uid=1@/x" {
		t.Fatalf("registered command: err %v, called %q", err, called)
	}
}
