package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"chatd/chat"
	"chatd/internal/teststack"
)

// TestConsultWalkthrough runs docs/consultations.md's walkthrough as
// written: every chatctl command of its sh blocks (outputs checked against
// the text block that follows, "…" matching anything), every frame its js
// blocks send, over real WebSocket connections named as in the page, and
// every "name ← {json}" line of its text blocks, checked as a subset of a
// frame that connection received. The page is parsed, not copied. What it
// adds: the server is a whole chatd in this process (internal/teststack)
// on free ports, the app myshop is created first (the README's step 2),
// SECRET and the tokens are filled in, and `sleep N` moves the server's
// replaced clock N seconds, one at a time, running its consultation clock
// after each, instead of waiting.
func TestConsultWalkthrough(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "consultations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Walkthrough\n")
	if !ok {
		t.Fatal("docs/consultations.md has no ## Walkthrough")
	}
	blocks := fencedBlocks(section)
	if len(blocks) < 10 {
		t.Fatalf("walkthrough has %d code blocks", len(blocks))
	}

	var clock atomic.Int64
	clock.Store(time.Now().UnixMilli())
	s := teststack.Start(t, t.TempDir(), teststack.Options{Core: chat.Config{Now: func() time.Time { return time.UnixMilli(clock.Load()) }}})
	ctx := context.Background()
	app, err := s.Admin.CreateApp(ctx, "myshop", "My shop")
	if err != nil {
		t.Fatal(err)
	}
	w := &walkthrough{t: t, s: s, clock: &clock, secret: app.Secret, tokens: map[string]string{}, conns: map[string]*wsConn{},
		env: map[string]string{"CHATD_HTTP": "http://" + s.HTTPAddr}}
	prev := ""
	for _, b := range blocks {
		switch b.lang {
		case "sh":
			w.checkReplies()
			w.shell(b.lines)
		case "js":
			w.checkReplies()
			w.js(b.lines)
		case "text":
			if prev == "sh" {
				w.output(b.lines)
				prev = "" // a second text block shows frames
			} else {
				w.frames(b.lines)
			}
		default:
			t.Fatalf("unexpected %q block in the walkthrough", b.lang)
		}
		if b.lang != "text" {
			prev = b.lang
		}
		if b.lang == "sh" && w.lastOut == "" {
			prev = "sleep" // printed nothing: the text after it shows frames
		}
	}
	w.checkReplies()
	if w.ran < 6 || w.sent < 7 || w.matched < 10 || !w.slept {
		t.Fatalf("walkthrough too thin: %d commands, %d frames sent, %d frames matched, slept %v", w.ran, w.sent, w.matched, w.slept)
	}
}

type block struct {
	lang  string
	lines []string
}

// fencedBlocks returns the fenced code blocks of md, their lines without
// the fence's indentation.
func fencedBlocks(md string) []block {
	var out []block
	var cur *block
	indent := ""
	for _, l := range strings.Split(md, "\n") {
		trim := strings.TrimSpace(l)
		switch {
		case cur == nil && strings.HasPrefix(trim, "```"):
			cur = &block{lang: strings.TrimPrefix(trim, "```")}
			indent = l[:len(l)-len(strings.TrimLeft(l, " "))]
		case cur != nil && trim == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.lines = append(cur.lines, strings.TrimPrefix(l, indent))
		}
	}
	return out
}

type walkthrough struct {
	t       *testing.T
	s       *teststack.Server
	clock   *atomic.Int64
	secret  string
	env     map[string]string
	tokens  map[string]string // uid → token
	conns   map[string]*wsConn
	lastOut string
	ran     int
	sent    int
	matched int
	slept   bool
}

// shellWords splits a command line on spaces, keeping "double quoted" words.
func shellWords(l string) []string {
	var out []string
	var cur strings.Builder
	in, has := false, false
	for _, r := range l {
		switch {
		case r == '"':
			in, has = !in, true
		case r == ' ' && !in:
			if has {
				out = append(out, cur.String())
				cur.Reset()
				has = false
			}
		default:
			cur.WriteRune(r)
			has = true
		}
	}
	if has {
		out = append(out, cur.String())
	}
	return out
}

func (w *walkthrough) shell(lines []string) {
	t := w.t
	w.lastOut = ""
	for _, l := range lines {
		words := shellWords(l)
		if len(words) == 0 {
			continue
		}
		switch words[0] {
		case "sleep":
			n, err := strconv.Atoi(words[1])
			if err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			for i := 0; i < n; i++ {
				w.clock.Add(1000)
				w.s.Core.ConsultTick(context.Background())
			}
			w.slept = true
		case "./chatctl":
			args := words[1:]
			for i, a := range args {
				if a == "SECRET" {
					args[i] = w.secret
				}
			}
			out, errOut, err := ctl(t, w.env, args...)
			if err != nil {
				t.Fatalf("%s: %v\n%s", l, err, errOut)
			}
			w.ran++
			w.lastOut += out
			if words[1] == "user" && words[2] == "push" {
				uid := words[indexOf(words, "--uid")+1]
				m := regexp.MustCompile(`(?m)^token\s+(\S+)$`).FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("%s printed no token:\n%s", l, out)
				}
				w.tokens[uid] = m[1]
			}
		default:
			t.Fatalf("walkthrough command %q: the test runs only ./chatctl and sleep", l)
		}
	}
}

func indexOf(ws []string, s string) int {
	for i, w := range ws {
		if w == s {
			return i
		}
	}
	return -2
}

// output checks the last commands' output against the doc's lines, in
// order, "…" matching anything.
func (w *walkthrough) output(lines []string) {
	got := strings.Split(strings.TrimRight(w.lastOut, "\n"), "\n")
	i := 0
	for _, want := range lines {
		if strings.TrimSpace(want) == "" {
			continue
		}
		re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(want), "…", ".*") + "$")
		for i < len(got) && !re.MatchString(strings.TrimRight(got[i], " ")) {
			i++
		}
		if i == len(got) {
			w.t.Fatalf("output lacks %q:\n%s", want, w.lastOut)
		}
		i++
	}
}

var (
	reDial = regexp.MustCompile(`^const (\w+) = new WebSocket\("ws://localhost:22886/"\);$`)
	reSend = regexp.MustCompile(`^(?:(\w+)\.onopen = \(\) => )?(\w+)\.send\('(.*)'\);$`)
	reLog  = regexp.MustCompile(`^(\w+)\.onmessage = \(e\) => console\.log\(JSON\.parse\(e\.data\)\);$`)
)

func (w *walkthrough) js(lines []string) {
	t := w.t
	for _, l := range lines {
		if m := reDial.FindStringSubmatch(l); m != nil {
			w.conns[m[1]] = dialWS(t, w.s.WSAddr)
			continue
		}
		if reLog.MatchString(l) {
			continue
		}
		m := reSend.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("walkthrough js line not understood: %q", l)
		}
		c := w.conns[m[2]]
		if c == nil {
			t.Fatalf("%q: no connection %s", l, m[2])
		}
		frame := m[3]
		for uid, tok := range w.tokens {
			frame = strings.ReplaceAll(frame, strings.ToUpper(uid)+"_TOKEN", tok)
		}
		var req struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(frame), &req); err != nil || req.ID == "" {
			t.Fatalf("%q: frame is not JSON with an id: %v", l, err)
		}
		c.send(t, frame)
		w.sent++
		c.waitReply(t, req.ID)
	}
}

// frames checks "name ← {json}" lines: each must be a subset of a frame
// that connection received (consumed when matched).
func (w *walkthrough) frames(lines []string) {
	t := w.t
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		name, js, ok := strings.Cut(l, "←")
		if !ok {
			t.Fatalf("text line %q is neither output (after sh) nor a frame line", l)
		}
		c := w.conns[strings.TrimSpace(name)]
		if c == nil {
			t.Fatalf("%q: no connection %q", l, strings.TrimSpace(name))
		}
		var want any
		if err := json.Unmarshal([]byte(strings.TrimSpace(js)), &want); err != nil {
			t.Fatalf("%q: not JSON: %v", l, err)
		}
		c.take(t, want, l)
		w.matched++
	}
}

// checkReplies fails on a reply that was not ok and that no frame line
// of the page accounted for.
func (w *walkthrough) checkReplies() {
	for name, c := range w.conns {
		c.mu.Lock()
		for _, f := range c.frames {
			if m, ok := f.(map[string]any); ok && m["reply_to"] != nil && m["ok"] != true {
				c.mu.Unlock()
				w.t.Fatalf("%s got a failed reply the page does not show: %v", name, m)
			}
		}
		c.mu.Unlock()
	}
}

type wsConn struct {
	conn   interface{ Close() error }
	write  func(string) error
	mu     sync.Mutex
	frames []any
	notify chan struct{}
}

func dialWS(t *testing.T, addr string) *wsConn {
	t.Helper()
	conn, _, _, err := ws.Dial(context.Background(), "ws://"+addr+"/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &wsConn{conn: conn, notify: make(chan struct{}, 1),
		write: func(s string) error { return wsutil.WriteClientText(conn, []byte(s)) }}
	go func() {
		for {
			b, err := wsutil.ReadServerText(conn)
			if err != nil {
				return
			}
			var f any
			if json.Unmarshal(b, &f) != nil {
				continue
			}
			c.mu.Lock()
			c.frames = append(c.frames, f)
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
		}
	}()
	return c
}

func (c *wsConn) send(t *testing.T, s string) {
	if err := c.write(s); err != nil {
		t.Fatal(err)
	}
}

// find waits for a frame that match accepts; consume removes it.
func (c *wsConn) find(t *testing.T, match func(any) bool, consume bool, what string) any {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		c.mu.Lock()
		for i, f := range c.frames {
			if match(f) {
				if consume {
					c.frames = append(c.frames[:i], c.frames[i+1:]...)
				}
				c.mu.Unlock()
				return f
			}
		}
		have, _ := json.Marshal(c.frames)
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-deadline:
			t.Fatalf("no frame for %s; have %s", what, have)
		}
	}
}

func (c *wsConn) waitReply(t *testing.T, id string) {
	c.find(t, func(f any) bool { m, ok := f.(map[string]any); return ok && m["reply_to"] == id }, false, "reply "+id)
	// A login reply is not shown on the page: take it when ok.
	c.mu.Lock()
	for i, f := range c.frames {
		if m := f.(map[string]any); m["reply_to"] == id && m["ok"] == true {
			if d, _ := m["data"].(map[string]any); d != nil && d["expires_at"] != nil {
				c.frames = append(c.frames[:i], c.frames[i+1:]...)
			}
			break
		}
	}
	c.mu.Unlock()
}

func (c *wsConn) take(t *testing.T, want any, line string) {
	t.Helper()
	c.find(t, func(f any) bool { return subset(want, f) }, true, line)
}

// subset reports whether every field of want is in got with the same
// value (recursively for objects).
func subset(want, got any) bool {
	wm, ok := want.(map[string]any)
	if !ok {
		return reflect.DeepEqual(want, got)
	}
	gm, ok := got.(map[string]any)
	if !ok {
		return false
	}
	for k, v := range wm {
		if !subset(v, gm[k]) {
			return false
		}
	}
	return true
}
