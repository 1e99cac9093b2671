//go:build linux

package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"chatd/internal/proc"
	"chatd/storage"
)

// TestREADMEWalkthrough runs README.md's "From nothing to two users
// chatting" from start to end with its commands exactly as printed: the
// shell commands of its code blocks (the build included, in a copy of this
// source tree), the browser console steps with a WebSocket client sending
// the objects the README shows, the inline requests and commands of its
// prose. It checks the replies and events the README promises, that every
// command chatd and chatctl suggest along the way is the README's own, and
// that a message read back carries the msg_id its send reply carried. The
// README is parsed, not copied: when it changes, this test follows it.
//
// The only things it adds are in the environment: CHATD_WS_ADDR and
// CHATD_HTTP_ADDR put the server on free loopback ports instead of the
// defaults (the WebSocket URL of the console step is rewritten to match),
// and the copy is a git checkout of its own so that the build stamps its
// version from the commit.
func TestREADMEWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds chatd and chatctl from a copy of the source tree")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	steps := parseWalkthrough(t, string(readme))

	work := t.TempDir()
	copySource(t, root, work)
	commit := gitCommitAll(t, work) // "" without git: no version check

	w := &walk{t: t, dir: work, env: walkEnv(commit != ""), tokens: map[string]string{},
		uids: map[string]string{}, msgIDs: map[string]string{}, sentIDs: map[string]*tab{}}
	t.Cleanup(w.killLeftover)
	for _, st := range steps {
		w.step(st)
	}
	w.finish(commit)
}

// ---- the README, parsed

// stepKind is what a piece of the walkthrough is.
type stepKind int

const (
	stepShell  stepKind = iota + 1 // a line of a ```sh block
	stepJS                         // a ```js block (browser console)
	stepInline                     // an inline code span in the prose
)

type walkStep struct {
	kind stepKind
	text string // the command, the block or the span
	// prose is the paragraph text before a js block or around an inline
	// span: it says whose tab ("In Alice's tab").
	prose string
}

var (
	fenceRE  = regexp.MustCompile("(?m)^[ \t]*```([a-z]*)[ \t]*$")
	inlineRE = regexp.MustCompile("`([^`\n]+)`")
)

// parseWalkthrough returns the steps of the README section "From nothing
// to two users chatting", in document order.
func parseWalkthrough(t *testing.T, readme string) []walkStep {
	t.Helper()
	const title = "\n## From nothing to two users chatting\n"
	i := strings.Index(readme, title)
	if i < 0 {
		t.Fatalf("README.md has no section %q", strings.TrimSpace(title))
	}
	sec := readme[i+len(title):]
	if j := strings.Index(sec, "\n## "); j >= 0 {
		sec = sec[:j]
	}
	var steps []walkStep
	prose := func(p string) {
		for _, m := range inlineRE.FindAllStringSubmatchIndex(p, -1) {
			// The sentence the span is in, for context.
			start := strings.LastIndexAny(p[:m[0]], ".:\n") + 1
			steps = append(steps, walkStep{kind: stepInline, text: p[m[2]:m[3]], prose: p[start:m[0]]})
		}
	}
	for {
		open := fenceRE.FindStringSubmatchIndex(sec)
		if open == nil {
			prose(sec)
			break
		}
		before := sec[:open[0]]
		prose(before)
		lang := sec[open[2]:open[3]]
		rest := sec[open[1]:]
		end := fenceRE.FindStringIndex(rest)
		if end == nil {
			t.Fatal("README.md: unterminated code block in the walkthrough")
		}
		body := dedent(rest[:end[0]])
		sec = rest[end[1]:]
		switch lang {
		case "sh":
			for _, line := range strings.Split(strings.ReplaceAll(body, "\\\n", " "), "\n") {
				if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
					steps = append(steps, walkStep{kind: stepShell, text: line})
				}
			}
		case "js":
			para := before[strings.LastIndex(strings.TrimRight(before, " \n"), "\n\n")+1:]
			steps = append(steps, walkStep{kind: stepJS, text: body, prose: para})
		default:
			t.Fatalf("README.md: the walkthrough has a ```%s block this test cannot run", lang)
		}
	}
	var n [4]int
	for _, s := range steps {
		n[s.kind]++
	}
	if n[stepShell] == 0 || n[stepJS] == 0 {
		t.Fatalf("README.md walkthrough: found %d shell commands and %d console blocks", n[stepShell], n[stepJS])
	}
	return steps
}

// dedent strips the indentation of a code block inside a list item.
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	min := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if n := len(l) - len(strings.TrimLeft(l, " ")); min < 0 || n < min {
			min = n
		}
	}
	for i, l := range lines {
		if len(l) >= min && min > 0 {
			lines[i] = l[min:]
		}
	}
	return strings.Join(lines, "\n")
}

// ---- the walk

type walk struct {
	t   *testing.T
	dir string   // the copy of the source tree: the README's working directory
	env []string // the commands' environment

	secret   string            // from `app create`
	tokens   map[string]string // uid → newest token printed for it
	uids     map[string]string // nickname → uid, from the pushes
	order    []string          // uids in the order they got tokens
	commands []string          // every shell and inline command of the README, as printed and substituted

	// What chatd and chatctl printed as the next command to run.
	suggested []string

	tabs    []*tab            // the browser tabs, one per user with a token
	byUID   map[string]*tab   // uid → tab
	sentIDs map[string]*tab   // request id → the tab that sent it
	lastTab *tab              // the tab of the latest request
	msgIDs  map[string]string // "session-seq" → msg_id of the send reply
	sent    []json.RawMessage // contents of the messages sent
	stopped bool              // `chatd stop` ran
}

// walkEnv is the environment of the README's commands: the test's, without
// CHATD_ settings from the developer's shell, with the server on free
// loopback ports; with vcs, the build stamps version control information
// (CI builds with -buildvcs=false, which would leave none).
func walkEnv(vcs bool) []string {
	var env []string
	goflags := ""
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "CHATD_"), strings.HasPrefix(kv, proc.ChildEnv):
		case strings.HasPrefix(kv, "GOFLAGS="):
			goflags = strings.TrimPrefix(kv, "GOFLAGS=")
		default:
			env = append(env, kv)
		}
	}
	if vcs {
		var fl []string
		for _, f := range strings.Fields(goflags) {
			if !strings.HasPrefix(f, "-buildvcs") {
				fl = append(fl, f)
			}
		}
		goflags = strings.Join(append(fl, "-buildvcs=true"), " ")
	}
	return append(env, "GOFLAGS="+goflags, "CHATD_WS_ADDR=127.0.0.1:0", "CHATD_HTTP_ADDR=127.0.0.1:0")
}

func (w *walk) step(st walkStep) {
	w.t.Helper()
	switch st.kind {
	case stepShell:
		w.run(st.text)
	case stepJS:
		w.console(st)
	case stepInline:
		w.inline(st)
	}
}

// substitute fills the README's placeholders from earlier output.
func (w *walk) substitute(cmd string) string {
	w.t.Helper()
	if strings.Contains(cmd, "SECRET") {
		if w.secret == "" {
			w.t.Fatalf("README command %q needs SECRET before any command printed one", cmd)
		}
		cmd = strings.ReplaceAll(cmd, "SECRET", w.secret)
	}
	return cmd
}

var (
	secretRE = regexp.MustCompile(`(?m)^\s*secret\s+(\S+)\s*$`)
	tokenRE  = regexp.MustCompile(`(?m)^token\s+(\S+)\s*$`)
	uidRE    = regexp.MustCompile(`--uid\s+(\S+)`)
	nickRE   = regexp.MustCompile(`--nickname\s+(\S+)`)
	nextRE   = regexp.MustCompile(`(?m)^next, [^\n]*:\n  ([^\n]+)$`)
	stopRE   = regexp.MustCompile(`(?m)^stop it with: (.+)$`)
)

// run runs one command of the README in its working directory, as printed
// but for the placeholders, and learns from what it prints.
func (w *walk) run(printed string) string {
	w.t.Helper()
	cmd := w.substitute(printed)
	w.commands = append(w.commands, cmd)
	timeout := time.Minute
	if strings.HasPrefix(cmd, "go ") {
		timeout = 10 * time.Minute // a build from a cold cache on a slow box
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.Dir, c.Env = w.dir, w.env
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	start := time.Now()
	err := c.Run()
	w.t.Logf("$ %s   (%v)\n%s", printed, time.Since(start).Round(time.Millisecond), out.String())
	if err != nil {
		w.t.Fatalf("README command %q: %v\n%s", printed, err, out.String())
	}
	s := out.String()
	if m := secretRE.FindStringSubmatch(s); m != nil {
		w.secret = m[1]
	}
	if m := tokenRE.FindStringSubmatch(s); m != nil {
		u := uidRE.FindStringSubmatch(cmd)
		if u == nil {
			w.t.Fatalf("%q printed a token but names no --uid", printed)
		}
		if _, ok := w.tokens[u[1]]; !ok {
			w.order = append(w.order, u[1])
		}
		w.tokens[u[1]] = m[1]
		if n := nickRE.FindStringSubmatch(cmd); n != nil {
			w.uids[n[1]] = u[1]
		}
	}
	for _, m := range nextRE.FindAllStringSubmatch(s, -1) {
		w.suggested = append(w.suggested, m[1])
	}
	for _, m := range stopRE.FindAllStringSubmatch(s, -1) {
		w.suggested = append(w.suggested, m[1])
	}
	if f := strings.Fields(cmd); len(f) > 1 && strings.HasSuffix(f[0], "chatctl") && f[1] == "history" {
		if len(w.sent) == 0 {
			w.t.Fatalf("README runs %q before any message was sent", printed)
		}
		for _, c := range w.sent {
			if !strings.Contains(s, string(c)) {
				w.t.Fatalf("%q does not show the message %s that was sent:\n%s", printed, c, s)
			}
		}
	}
	return s
}

// runInfo is the running server's chatd.run in the README's data folder.
func (w *walk) runInfo() proc.RunInfo {
	w.t.Helper()
	ri, err := proc.ReadRunInfo(filepath.Join(w.dir, "data"))
	if err != nil {
		w.t.Fatalf("the README's chatd publishes no run file in ./data: %v", err)
	}
	return ri
}

var (
	wsURLRE   = regexp.MustCompile(`new WebSocket\("([^"]+)"\)`)
	jsSendRE  = regexp.MustCompile(`ws\.send\(JSON\.stringify\((\{.*\})\)\)`)
	whoseTab  = regexp.MustCompile(`In (\w+)'s tab`)
	hasOpenRE = regexp.MustCompile(`ws\.onopen`)
)

// console does a browser-console block: the one that opens the WebSocket
// runs in a tab per user with a token (its TOKEN being that user's);
// one under "In NAME's tab" runs in that user's tab.
func (w *walk) console(st walkStep) {
	w.t.Helper()
	sends := jsSendRE.FindAllStringSubmatch(st.text, -1)
	if len(sends) == 0 {
		w.t.Fatalf("README console block sends nothing this test can read:\n%s", st.text)
	}
	if m := wsURLRE.FindStringSubmatch(st.text); m != nil {
		if !hasOpenRE.MatchString(st.text) {
			w.t.Fatalf("README console block opens a WebSocket but sends nothing on open:\n%s", st.text)
		}
		if len(w.order) < 2 {
			w.t.Fatalf("the console step needs two users with tokens; the README's commands printed %d", len(w.order))
		}
		u, err := url.Parse(m[1])
		if err != nil {
			w.t.Fatalf("README WebSocket URL %q: %v", m[1], err)
		}
		_, port, _ := net.SplitHostPort(u.Host)
		if _, rport, _ := net.SplitHostPort(w.defaultWSAddr()); port != rport {
			w.t.Errorf("README WebSocket URL %s is not on chatd's default port %s", m[1], rport)
		}
		u.Host = proc.LocalAddr(w.runInfo().WSAddr) // the port this test's server got
		w.byUID = map[string]*tab{}
		for _, uid := range w.order {
			tb := dialTab(w.t, uid, u.String())
			w.tabs = append(w.tabs, tb)
			w.byUID[uid] = tb
			for _, s := range sends {
				req := jsToJSON(w.t, strings.ReplaceAll(s[1], `"TOKEN"`, `"`+w.tokens[uid]+`"`))
				r := w.request(tb, req)
				if !r.OK {
					w.t.Fatalf("%s's tab: %s answered %s", uid, req, r.raw)
				}
				if r.Data["uid"] != uid {
					w.t.Fatalf("%s's tab logged in as %v: %s", uid, r.Data["uid"], r.raw)
				}
			}
		}
		return
	}
	m := whoseTab.FindStringSubmatch(st.prose)
	if m == nil {
		w.t.Fatalf("README console block without a WebSocket and without \"In NAME's tab\" before it:\n%s", st.text)
	}
	tb := w.byUID[w.uids[m[1]]]
	if tb == nil {
		w.t.Fatalf("README says %q but no pushed user has nickname %s", m[0], m[1])
	}
	for _, s := range sends {
		w.sendOnly(tb, jsToJSON(w.t, s[1]))
	}
}

// defaultWSAddr is chatd's default WebSocket address, from `chatd config`
// run without the test's address override.
func (w *walk) defaultWSAddr() string {
	w.t.Helper()
	var env []string
	for _, kv := range w.env {
		if !strings.HasPrefix(kv, "CHATD_WS_ADDR=") {
			env = append(env, kv)
		}
	}
	c := exec.Command(filepath.Join(w.dir, "chatd"), "config")
	c.Dir, c.Env = w.dir, env
	out, err := c.Output()
	if err != nil {
		w.t.Fatalf("chatd config: %v", err)
	}
	m := regexp.MustCompile(`(?m)^ws_addr\s*=\s*(\S+)`).FindSubmatch(out)
	if m == nil {
		w.t.Fatalf("chatd config shows no ws_addr:\n%s", out)
	}
	return string(m[1])
}

// inline handles a code span of the prose: a command of chatd or chatctl
// runs; a complete request is sent from a tab; a reply or event (… for
// "more fields") is checked against what the tabs received.
func (w *walk) inline(st walkStep) {
	w.t.Helper()
	if strings.HasPrefix(st.text, "./chatd ") || strings.HasPrefix(st.text, "./chatctl ") {
		if w.stopped && !strings.HasPrefix(st.text, "./chatd restore ") {
			w.t.Fatalf("README runs %q after `chatd stop`", st.text)
		}
		var before proc.RunInfo
		if !w.stopped {
			before = w.runInfo()
		}
		out := w.run(st.text)
		switch strings.Fields(st.text)[1] {
		case "backup", "restore":
			// "a consistent copy": the file is one chatd can open.
			f := filepath.Join(w.dir, strings.Fields(st.text)[2])
			if err := storage.Verify(f); err != nil {
				w.t.Fatalf("%s: %v\n%s", st.text, err, out)
			}
		case "status":
			if !strings.Contains(out, "chatd is running") || !strings.Contains(out, fmt.Sprintf("pid           %d", before.PID)) {
				w.t.Fatalf("%s does not show the running server (pid %d):\n%s", st.text, before.PID, out)
			}
		case "stop":
			w.stopped = true
			// "clients are told with close code 1001"
			for _, tb := range w.tabs {
				if code := tb.closeCode(w.t); code != ws.StatusGoingAway {
					w.t.Fatalf("%s's tab closed with %d, want 1001", tb.uid, code)
				}
			}
			if proc.Alive(before.PID) {
				w.t.Fatalf("chatd (pid %d) still runs after %s", before.PID, st.text)
			}
		}
		return
	}
	partial := strings.Contains(st.text, "…")
	var v map[string]any
	if json.Unmarshal([]byte(strings.NewReplacer(",…", "", "…", "").Replace(st.text)), &v) != nil {
		return // prose, not protocol
	}
	switch {
	case v["reply_to"] != nil:
		id, _ := v["reply_to"].(string)
		tb := w.sentIDs[id]
		if tb == nil {
			w.t.Fatalf("README shows a reply to %q, which no step sent", id)
		}
		got := tb.reply(w.t, id)
		w.checkShape(st.text, v, got.all)
		w.noteSend(got)
	case v["event"] != nil:
		// The members other than the sender receive it.
		name, _ := v["event"].(string)
		for _, tb := range w.tabs {
			if tb == w.lastTab {
				continue
			}
			ev := tb.event(w.t, name)
			w.checkShape(st.text, v, ev.all)
			if name == "message" {
				w.checkMsgID("the message event", ev.Data)
			}
		}
	case v["action"] != nil && !partial:
		// A request shown in the prose: "from a tab" — the first one.
		tb := w.tabs[0]
		if m := whoseTab.FindStringSubmatch(st.prose); m != nil {
			tb = w.byUID[w.uids[m[1]]]
		}
		r := w.request(tb, st.text)
		if !r.OK {
			w.t.Fatalf("README request %s answered %s", st.text, r.raw)
		}
		if v["action"] == "history" || v["action"] == "sync" {
			msgs, _ := r.Data["messages"].([]any)
			if len(msgs) != len(w.sent) {
				w.t.Fatalf("%s: %d messages, %d were sent: %s", st.text, len(msgs), len(w.sent), r.raw)
			}
			for _, m := range msgs {
				w.checkMsgID(st.text, m.(map[string]any))
			}
		}
	}
}

// noteSend remembers the msg_id of a send reply.
func (w *walk) noteSend(r frameAny) {
	if id, ok := r.Data["msg_id"].(string); ok && r.OK {
		w.msgIDs[fmt.Sprintf("%v-%v", r.Data["session_id"], r.Data["seq"])] = id
	}
}

// checkMsgID checks that a message object carries the msg_id the send
// reply of that message carried.
func (w *walk) checkMsgID(where string, m map[string]any) {
	w.t.Helper()
	key := fmt.Sprintf("%v-%v", m["session_id"], m["seq"])
	want, ok := w.msgIDs[key]
	if !ok {
		w.t.Fatalf("%s: message %s was not seen in a send reply", where, key)
	}
	if got, _ := m["msg_id"].(string); got != want {
		w.t.Fatalf("%s: message %s has msg_id %q, the send reply had %q", where, key, got, want)
	}
}

// checkShape checks that got has every field the README shows (a field
// with … may have more).
func (w *walk) checkShape(shown string, want, got map[string]any) {
	w.t.Helper()
	b, _ := json.Marshal(got)
	if !subset(want, got) {
		w.t.Fatalf("README promises %s, got %s", shown, b)
	}
	w.t.Logf("as the README promises (%s): %s", shown, b)
}

func subset(want, got any) bool {
	switch wv := want.(type) {
	case map[string]any:
		gv, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, x := range wv {
			if !subset(x, gv[k]) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(want, got)
	}
}

// request sends raw from tb and waits for its reply.
func (w *walk) request(tb *tab, raw string) frameAny {
	w.t.Helper()
	id := w.sendOnly(tb, raw)
	r := tb.reply(w.t, id)
	w.noteSend(r)
	return r
}

// sendOnly sends raw from tb and returns its id.
func (w *walk) sendOnly(tb *tab, raw string) string {
	w.t.Helper()
	var req struct {
		ID      string          `json:"id"`
		Action  string          `json:"action"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal([]byte(raw), &req); err != nil || req.ID == "" {
		w.t.Fatalf("README request %s: not a JSON object with a string id (%v)", raw, err)
	}
	w.sentIDs[req.ID], w.lastTab = tb, tb
	if req.Action == "send" {
		w.sent = append(w.sent, req.Content)
	}
	w.t.Logf("%s's tab → %s", tb.uid, raw)
	if err := wsutil.WriteClientText(tb.conn, []byte(raw)); err != nil {
		w.t.Fatalf("%s's tab: write: %v", tb.uid, err)
	}
	return req.ID
}

// finish checks what the walk leaves behind.
func (w *walk) finish(commit string) {
	w.t.Helper()
	if !w.stopped {
		w.t.Fatal("the README's walkthrough never stops chatd")
	}
	if len(w.sent) == 0 || len(w.msgIDs) == 0 {
		w.t.Fatal("the README's walkthrough sends no message")
	}
	// Every command chatd and chatctl suggested is one the README runs:
	// the first start's next command, the daemon's stop command, and
	// app create's next command.
	if len(w.suggested) < 3 {
		w.t.Fatalf("chatd and chatctl suggested %d commands, want the first start's, the daemon's stop and app create's: %q", len(w.suggested), w.suggested)
	}
	for _, s := range w.suggested {
		found := false
		for _, c := range w.commands {
			if strings.Join(strings.Fields(c), " ") == strings.Join(strings.Fields(s), " ") {
				found = true
			}
		}
		if !found {
			w.t.Errorf("suggested command %q is none of the README's:\n%s", s, strings.Join(w.commands, "\n"))
		}
	}
	// The build was stamped with the copy's commit.
	if commit != "" {
		c := exec.Command(filepath.Join(w.dir, "chatd"), "version")
		out, err := c.Output()
		if err != nil || !strings.Contains(string(out), commit[:12]) {
			w.t.Fatalf("chatd version after a build in a git checkout at %s: %q %v", commit[:12], out, err)
		}
	}
}

// killLeftover stops a daemon the walk started if the test failed before
// the README stopped it.
func (w *walk) killLeftover() {
	pid, err := proc.ReadPID(filepath.Join(w.dir, "data"))
	if err != nil || !proc.Alive(pid) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 200 && proc.Alive(pid); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if proc.Alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// ---- browser tabs

// tab is one WebSocket client standing for a browser tab.
type tab struct {
	uid    string
	conn   net.Conn
	frames chan frameAny
	held   []frameAny    // received, not yet waited for
	closed chan struct{} // closed when the server closed the connection
	code   ws.StatusCode // the close code, valid after closed
}

// frameAny is a reply or event decoded loosely.
type frameAny struct {
	ReplyTo string         `json:"reply_to"`
	OK      bool           `json:"ok"`
	Event   string         `json:"event"`
	Data    map[string]any `json:"data"`
	all     map[string]any
	raw     []byte
}

func dialTab(t *testing.T, uid, u string) *tab {
	t.Helper()
	conn, _, _, err := ws.Dial(context.Background(), u)
	if err != nil {
		t.Fatalf("%s's tab: dial %s: %v", uid, u, err)
	}
	tb := &tab{uid: uid, conn: conn, frames: make(chan frameAny, 256), closed: make(chan struct{})}
	t.Cleanup(func() { conn.Close() })
	go tb.read(t)
	return tb
}

func (tb *tab) read(t *testing.T) {
	defer close(tb.closed)
	for {
		b, op, err := wsutil.ReadServerData(tb.conn)
		if err != nil {
			var ce wsutil.ClosedError
			if errors.As(err, &ce) {
				tb.code = ce.Code
			}
			return
		}
		if op != ws.OpText {
			continue
		}
		f := frameAny{raw: b}
		if json.Unmarshal(b, &f) != nil || json.Unmarshal(b, &f.all) != nil {
			t.Errorf("%s's tab: server sent invalid JSON %q", tb.uid, b)
			continue
		}
		tb.frames <- f
	}
}

// reply waits for the reply to id.
func (tb *tab) reply(t *testing.T, id string) frameAny {
	t.Helper()
	return tb.wait(t, "reply to "+id, func(f frameAny) bool { return f.Event == "" && f.ReplyTo == id })
}

// event waits for the next event called name.
func (tb *tab) event(t *testing.T, name string) frameAny {
	t.Helper()
	return tb.wait(t, name+" event", func(f frameAny) bool { return f.Event == name })
}

func (tb *tab) wait(t *testing.T, what string, match func(frameAny) bool) frameAny {
	t.Helper()
	for i, f := range tb.held {
		if match(f) {
			tb.held = append(tb.held[:i], tb.held[i+1:]...)
			return f
		}
	}
	limit := time.After(10 * time.Second)
	for {
		select {
		case f := <-tb.frames:
			if match(f) {
				return f
			}
			tb.held = append(tb.held, f)
		case <-tb.closed:
			t.Fatalf("%s's tab: connection closed (%d) waiting for the %s", tb.uid, tb.code, what)
		case <-limit:
			t.Fatalf("%s's tab: no %s in 10s", tb.uid, what)
		}
	}
}

// closeCode waits for the server to close the connection and returns the
// code of its close frame.
func (tb *tab) closeCode(t *testing.T) ws.StatusCode {
	t.Helper()
	for {
		select {
		case <-tb.frames: // what came before the close
		case <-tb.closed:
			return tb.code
		case <-time.After(30 * time.Second):
			t.Fatalf("%s's tab: not closed 30s after chatd stop", tb.uid)
		}
	}
}

// jsToJSON turns a JavaScript object literal of the README (bare keys,
// double-quoted strings) into JSON.
func jsToJSON(t *testing.T, js string) string {
	t.Helper()
	var b strings.Builder
	inStr, esc := false, false
	for i := 0; i < len(js); i++ {
		c := js[i]
		switch {
		case inStr:
			b.WriteByte(c)
			if esc {
				esc = false
			} else if c == '\\' {
				esc = true
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
			b.WriteByte(c)
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(js) && (js[j] == '_' || js[j] >= 'a' && js[j] <= 'z' || js[j] >= 'A' && js[j] <= 'Z' || js[j] >= '0' && js[j] <= '9') {
				j++
			}
			word := js[i:j]
			k := j
			for k < len(js) && js[k] == ' ' {
				k++
			}
			if k < len(js) && js[k] == ':' {
				b.WriteString(`"` + word + `"`)
			} else {
				b.WriteString(word) // true, false, null
			}
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	// JSON.stringify writes no spaces.
	var out bytes.Buffer
	if err := json.Compact(&out, []byte(b.String())); err != nil {
		t.Fatalf("README console object %s is not one this test can read (as JSON: %s): %v", js, b.String(), err)
	}
	return out.String()
}

// ---- the source copy

// copySource copies what building the commands needs: go.mod, go.sum,
// the non-test Go files and the files they embed (the demo pages,
// pgstore's migrations).
func copySource(t *testing.T, root, dst string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules" || rel == "data") {
				return filepath.SkipDir
			}
			return nil
		}
		name := d.Name()
		embedded := strings.HasPrefix(filepath.ToSlash(rel), "internal/demo/assets/") || strings.HasSuffix(name, ".sql")
		if !(rel == "go.mod" || rel == "go.sum" || embedded || strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy the source tree: %v", err)
	}
}

// gitCommitAll makes dir a git repository with one commit of everything
// and returns its hash; "" when git is not installed.
func gitCommitAll(t *testing.T, dir string) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Log("git not found: the version stamp is not checked")
		return ""
	}
	git := func(args ...string) string {
		c := exec.Command("git", append([]string{"-c", "user.name=readme-test", "-c", "user.email=readme-test@localhost", "-c", "commit.gpgsign=false"}, args...)...)
		c.Dir = dir
		c.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("git %q: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	// What the README's commands create is ignored, as in the repository.
	if err := os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("/data/\n/chatd\n/chatctl\n/chatbench\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "-A")
	git("commit", "-q", "-m", "source copy for the README walkthrough")
	return git("rev-parse", "HEAD")
}
