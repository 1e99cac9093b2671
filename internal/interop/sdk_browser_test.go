package interop_test

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatd/internal/teststack"
)

// sdkPage is the page of TestSDKBrowser: it loads the SDK's browser
// bundle (the global Chatd) and offers the steps node/sdk_browser.mjs
// drives.
const sdkPage = `<!doctype html>
<meta charset="utf-8">
<title>chatd sdk</title>
<script src="/chatd.js"></script>
<script>
"use strict";
const until = async (what, cond) => {
  for (let i = 0; i < 3000 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 10));
  if (!(await cond())) throw new Error("waiting for " + what);
};
let chat, cfg, restored = [];
window.start = async (c) => {
  cfg = c;
  chat = new Chatd.ChatClient({ url: c.ws, httpUrl: c.http, app: c.app, token: c.token, persist: "indexeddb",
    backoffBase: 50, backoffMax: 300, requestTimeout: 5000 });
  chat.on("restored", (e) => { restored = e.sends.map((s) => s.cid); });
  await chat.connect();
  return { transport: chat.transport };
};
window.upload = async () => {
  const cv = document.createElement("canvas");
  cv.width = 40; cv.height = 30;
  const g = cv.getContext("2d");
  g.fillStyle = "#06c"; g.fillRect(0, 0, 40, 30);
  const blob = await new Promise((r) => cv.toBlob(r, "image/png"));
  const progress = [];
  const { file, ack } = await chat.sendFile({ to: cfg.peer, file: blob, name: "drawn.png", onProgress: (p) => progress.push(p.loaded) });
  return { progress, size: blob.size, file_size: file.size, width: file.width, session_id: ack.session_id };
};
// sends while sends over POST /v1/client are cut; resolves with their cids once all
// three are in IndexedDB
window.queue = async (sid, texts) => {
  for (const t of texts) chat.send({ session_id: sid, type: "text", content: { text: t } }).catch(() => {});
  const store = Chatd.indexedDBStore(indexedDB);
  await until("three queued sends in IndexedDB", async () => (await store.load(cfg.app)).length === texts.length);
  return (await store.load(cfg.app)).map((s) => s.cid);
};
// after the reload: waits for the restored sends to go, then reads back what the server stored
window.drain = async (sid) => {
  await until("the restored sends to be acknowledged", () => restored.length > 0 && chat.queuedSends().length === 0);
  // each is deleted from IndexedDB after its ack (a reload in between would
  // send it again with its cid, which the server answers as a duplicate)
  const store = Chatd.indexedDBStore(indexedDB);
  await until("IndexedDB to be empty", async () => (await store.load(cfg.app)).length === 0);
  const page = await chat.sync(sid, 0, 100);
  const left = (await store.load(cfg.app)).length;
  return { restored, left, stored: page.messages.map((m) => ({ text: m.content.text, cid: m.cid })) };
};
</script>
<p>chatd sdk page</p>
`

// The SDK in a real Chromium page on another origin: transport 'auto'
// falls back to SSE when the WebSocket cannot connect, sendFile reports
// XMLHttpRequest's upload progress, and sends queued in IndexedDB while
// sends over POST /v1/client are cut (one of them stored, its answer lost)
// survive the page being left and reopened: the new page sends them with
// their cids and the server stores each once. The steps are in node/sdk_browser.mjs.
func TestSDKBrowser(t *testing.T) {
	node := needNode(t)
	if _, err := os.Stat(chromiumPath); err != nil {
		missing(t, chromiumPath+" is not installed")
	}
	if _, err := os.Stat(filepath.Join(sdkDir, "node_modules", "esbuild", "package.json")); err != nil {
		missing(t, "sdk/js/node_modules is not installed (cd sdk/js && npm ci)")
	}
	// the browser bundle, from the source in the tree
	bundle := filepath.Join(t.TempDir(), "chatd.js")
	cmd := exec.Command(node, "-e", `require("esbuild").buildSync({entryPoints: ["src/index.ts"], bundle: true,
		format: "iife", globalName: "Chatd", target: "es2020", outfile: process.argv[1], logLevel: "warning"})`, bundle)
	cmd.Dir = sdkDir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("esbuild: %v\n%s", err, b)
	}
	js, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	origin := serveHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chatd.js" {
			w.Header().Set("Content-Type", "text/javascript")
			w.Write(js)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(sdkPage))
	}))

	c := &chatd{teststack.Start(t, t.TempDir(), teststack.Options{CORSOrigins: []string{origin},
		Log: zerolog.New(os.Stderr).Level(zerolog.WarnLevel)})}
	toks := c.tokens(t, "sdkweb", "alice", "bob")
	out := runNode(t, node, 120*time.Second, "sdk_browser.mjs", origin+"/", "ws://127.0.0.1:1/", "http://"+c.HTTPAddr,
		"sdkweb", toks[0], "bob")
	var r struct {
		Browser    string `json:"browser"`
		Transport  string `json:"transport"`
		Transport2 string `json:"transport2"`
		Upload     struct {
			Progress []int `json:"progress"`
			Size     int   `json:"size"`
			FileSize int   `json:"file_size"`
			Width    int   `json:"width"`
		} `json:"upload"`
		Queued   int `json:"queued"`
		Restored int `json:"restored"`
		Left     int `json:"left"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		t.Fatalf("browser script output %q: %v", out, err)
	}
	t.Logf("Chromium %s: %+v", r.Browser, r)
	if r.Transport != "sse" || r.Transport2 != "sse" {
		t.Fatalf("transports %q, %q; want sse (the fallback)", r.Transport, r.Transport2)
	}
	if r.Upload.FileSize != r.Upload.Size || r.Upload.Width != 40 {
		t.Fatalf("upload %+v", r.Upload)
	}
	if r.Queued != 3 || r.Restored != 3 || r.Left != 0 {
		t.Fatalf("queued %d, restored %d, left in IndexedDB %d; want 3, 3, 0", r.Queued, r.Restored, r.Left)
	}
}

// serveHandler serves h on 127.0.0.1 (another origin than chatd's) until the
// test ends, and returns its origin.
func serveHandler(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}
