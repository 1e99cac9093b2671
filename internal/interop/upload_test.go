package interop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatd/internal/teststack"
)

// uploadPage is the page of TestBrowserUpload: window.run does what a web
// client without a WebSocket does, with fetch and EventSource.
const uploadPage = `<!doctype html>
<meta charset="utf-8">
<title>chatd upload</title>
<script>
"use strict";
window.run = async (base, app, token) => {
  const H = { "X-Chatd-App": app, "Authorization": "Bearer " + token };
  const json = async (r) => { const j = await r.json(); if (!j.ok && j.ok !== undefined && !j.reply_to) throw new Error(r.url + ": " + JSON.stringify(j)); return j; };
  // The event stream first (EventSource cannot send headers: the token
  // goes in the query).
  const es = new EventSource(base + "/v1/events/stream?app=" + app + "&access_token=" + encodeURIComponent(token));
  let resolveMsg;
  const message = new Promise((resolve) => { resolveMsg = resolve; });
  es.onmessage = (e) => {
    const ev = JSON.parse(e.data);
    if (ev.event === "message" && ev.data.type === "image") resolveMsg(ev.data);
  };
  await new Promise((resolve, reject) => { es.onopen = resolve; setTimeout(() => reject(new Error("event stream did not open")), 15000); });

  // An image the browser draws itself.
  const c = document.createElement("canvas");
  c.width = 64; c.height = 48;
  const g = c.getContext("2d");
  g.fillStyle = "#c00"; g.fillRect(0, 0, 64, 48);
  g.fillStyle = "#fff"; g.fillRect(8, 8, 20, 20);
  const blob = await new Promise((r) => c.toBlob(r, "image/png"));
  const up = await json(await fetch(base + "/v1/files?type=image&name=drawing.png", { method: "POST", headers: H, body: blob }));

  const sent = await (await fetch(base + "/v1/client", { method: "POST", headers: H,
    body: JSON.stringify({ id: "1", action: "send", to: "bob", type: "image", content: { file_id: up.data.file_id } }) })).json();
  if (!sent.ok) throw new Error("send: " + JSON.stringify(sent));
  const msg = await Promise.race([message, new Promise((_, rej) => setTimeout(() => rej(new Error("no message on the event stream")), 15000))]);
  es.close();

  const u = await json(await fetch(base + "/v1/files/" + msg.content.file_id + "/url", { headers: H }));
  const img = document.createElement("img");
  document.body.appendChild(img);
  await new Promise((resolve, reject) => {
    img.onload = resolve;
    img.onerror = () => reject(new Error("the <img> did not load " + img.src));
    img.src = base + u.data.url;
  });
  return { fileId: up.data.file_id, uploadWidth: up.data.width, uploadHeight: up.data.height, mime: up.data.mime,
    messageURL: msg.content.url, messageWidth: msg.content.width, imgWidth: img.naturalWidth, imgHeight: img.naturalHeight };
};
</script>
<p>chatd upload page</p>
`

// A real Chromium page on another origin uploads an image it drew (CORS
// preflight), sends it by file id, receives the message over Server-Sent
// Events, and shows the file in an <img> from its signed URL.
func TestBrowserUpload(t *testing.T) {
	node := needNode(t)
	if _, err := os.Stat(chromiumPath); err != nil {
		missing(t, chromiumPath+" is not installed")
	}
	origin := serveHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(uploadPage))
	}))

	c := &chatd{teststack.Start(t, t.TempDir(), teststack.Options{CORSOrigins: []string{origin},
		Log: zerolog.New(os.Stderr).Level(zerolog.WarnLevel)})}
	toks := c.tokens(t, "web", "alice", "bob")
	out := runNode(t, node, 120*time.Second, "upload.js", origin+"/", "http://"+c.HTTPAddr, "web", toks[0])
	var r struct {
		Browser                   string `json:"browser"`
		FileID                    string `json:"fileId"`
		UploadWidth, UploadHeight int
		MIME                      string `json:"mime"`
		MessageURL                string `json:"messageURL"`
		MessageWidth              int    `json:"messageWidth"`
		ImgWidth, ImgHeight       int
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		t.Fatalf("browser script output %q: %v", out, err)
	}
	t.Logf("Chromium %s: %+v", r.Browser, r)
	if len(r.FileID) != 64 || r.MIME != "image/png" || r.UploadWidth != 64 || r.UploadHeight != 48 {
		t.Fatalf("upload answer: %+v", r)
	}
	if r.MessageURL != "chatd-file:"+r.FileID || r.MessageWidth != 64 {
		t.Fatalf("the message on the event stream: %+v", r)
	}
	if r.ImgWidth != 64 || r.ImgHeight != 48 {
		t.Fatalf("the <img> shows %dx%d, want 64x48", r.ImgWidth, r.ImgHeight)
	}
	if _, err := c.Core.File(context.Background(), "web", r.FileID); err != nil {
		t.Fatalf("file record: %v", err)
	}
}
