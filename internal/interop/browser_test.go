package interop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatd/httpapi/apiclient"
	"chatd/internal/teststack"
)

// chatd is a real chatd in this process (internal/teststack).
type chatd struct{ *teststack.Server }

func startChatd(t *testing.T, compression bool) *chatd {
	t.Helper()
	log := zerolog.New(os.Stderr).Level(zerolog.WarnLevel)
	return &chatd{teststack.Start(t, t.TempDir(), teststack.Options{Compression: compression, Log: log})}
}

// tokens creates an app and one user per uid, and returns their chat
// tokens.
func (c *chatd) tokens(t *testing.T, appID string, uids ...string) []string {
	t.Helper()
	ctx := context.Background()
	a, err := c.Admin.CreateApp(ctx, appID, appID)
	if err != nil {
		t.Fatal(err)
	}
	app := c.AppClient(a.ID, a.Secret)
	var out []string
	for _, uid := range uids {
		r, err := app.PushUser(ctx, apiclient.PushUserInput{UID: uid, Nickname: uid, IssueToken: true})
		if err != nil || r.Token == "" {
			t.Fatalf("push %s: %v", uid, err)
		}
		out = append(out, r.Token)
	}
	return out
}

// chatPage is the page the browser opens: window.chat wraps one browser
// WebSocket to chatd with request/reply and event queues.
const chatPage = `<!doctype html>
<meta charset="utf-8">
<title>chatd interop</title>
<script>
"use strict";
window.chat = (() => {
  let ws = null, n = 0, closeCode = null;
  const replies = new Map(), events = [], waiters = [];
  function wake() { for (const w of waiters.splice(0)) w(); }
  function waitFor(cond, ms) {
    return new Promise((resolve, reject) => {
      const until = Date.now() + ms;
      const poll = () => {
        const v = cond();
        if (v !== undefined) return resolve(v);
        if (Date.now() > until) return reject(new Error("timed out"));
        waiters.push(poll);
        setTimeout(wake, 50);
      };
      poll();
    });
  }
  return {
    async open(url, app, token) {
      ws = new WebSocket(url);
      ws.onmessage = (e) => {
        const m = JSON.parse(e.data);
        if (m.reply_to !== undefined) replies.set(m.reply_to, m); else events.push(m);
        wake();
      };
      ws.onclose = (e) => { closeCode = e.code; wake(); };
      await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error("WebSocket error")); });
      const r = await this.request({ action: "login", app, token });
      if (!r.ok) throw new Error("login: " + JSON.stringify(r));
      return ws.extensions;
    },
    request(req) {
      const id = "r" + (++n);
      ws.send(JSON.stringify(Object.assign({ id }, req)));
      return waitFor(() => {
        if (replies.has(id)) { const r = replies.get(id); replies.delete(id); return r; }
        if (closeCode !== null) throw new Error("closed " + closeCode);
      }, 10000);
    },
    events(name, count) {
      return waitFor(() => {
        const got = events.filter((e) => e.event === name);
        if (got.length >= count) return got;
      }, 10000);
    },
    close() {
      ws.close(1000, "bye");
      return waitFor(() => (closeCode === null ? undefined : closeCode), 10000);
    },
  };
})();
</script>
<p>chatd interop page</p>
`

// servePage serves chatPage from 127.0.0.1 until the test ends.
func servePage(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(chatPage))
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

type browserReport struct {
	Browser    string   `json:"browser"`
	Extensions []string `json:"extensions"`
	BobGot     []uint64 `json:"bobGot"`
	AliceGot   []uint64 `json:"aliceGot"`
	CloseCodes []int    `json:"closeCodes"`
}

// A real Chromium logs in to a real chatd over a browser WebSocket and two
// users exchange messages, with and without permessage-deflate.
func TestBrowser(t *testing.T) {
	node := needNode(t)
	if _, err := os.Stat(chromiumPath); err != nil {
		missing(t, chromiumPath+" is not installed")
	}
	page := servePage(t)
	for _, compress := range []bool{true, false} {
		t.Run("compression="+strconv.FormatBool(compress), func(t *testing.T) {
			c := startChatd(t, compress)
			toks := c.tokens(t, "web", "alice", "bob")
			out := runNode(t, node, 120*time.Second, "browser.js", page, "ws://"+c.WSAddr+"/", "web", toks[0], toks[1])
			var r browserReport
			if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
				t.Fatalf("browser script output %q: %v", out, err)
			}
			t.Logf("Chromium %s: extensions %q, bob got seqs %v, alice got %v, close codes %v",
				r.Browser, r.Extensions, r.BobGot, r.AliceGot, r.CloseCodes)
			for _, ext := range r.Extensions {
				if negotiated := bytes.Contains([]byte(ext), []byte("permessage-deflate")); negotiated != compress {
					t.Fatalf("browser negotiated %q with compression %v", ext, compress)
				}
			}
			st := c.WS.Stats()
			if compress && (st.FramesCompressed == 0 || st.Deflates == 0) {
				t.Fatalf("compression on but nothing went out compressed: %+v", st)
			}
			if !compress && st.FramesCompressed != 0 {
				t.Fatalf("compression off but %d frames went out compressed", st.FramesCompressed)
			}
		})
	}
}
