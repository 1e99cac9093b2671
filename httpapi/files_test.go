package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// get fetches a path (a signed file URL) without a token.
func (h *fileHarness) get(path string, hdr map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	req, _ := http.NewRequest("GET", baseURL+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := h.remote.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// send runs a client action over POST /v1/client and returns its reply.
func (h *fileHarness) action(token, body string) (ok bool, data json.RawMessage, code, msg string) {
	h.t.Helper()
	a := do(h.t, h.remote, userReq(h.t, "POST", "/v1/client", "shop", token, []byte(body)))
	var r struct {
		OK    bool            `json:"ok"`
		Data  json.RawMessage `json:"data"`
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(a.Body, &r); err != nil {
		h.t.Fatal(err)
	}
	return r.OK, r.Data, r.Error.Code, r.Error.Message
}

func (h *fileHarness) fileURL(token, id string) (string, answer) {
	h.t.Helper()
	a := do(h.t, h.remote, userReq(h.t, "GET", "/v1/files/"+id+"/url", "shop", token, nil))
	var r FileURLReply
	json.Unmarshal(a.Data, &r)
	return r.URL, a
}

// A file is served from its signed URL with the headers a browser needs
// (type, length, ETag, nosniff), ranges for seeking, and as an attachment
// unless it is an image, audio or video. Signed URLs expire, cannot be
// forged, and are only given to the uploader and to members of sessions
// the file was sent into.
func TestFileServingAndAccess(t *testing.T) {
	h := newFileHarness(t, func(c *Config) { c.FileURLTTL = time.Hour })
	ta, tb, tc := h.user(h.app, "alice"), h.user(h.app, "bob"), h.user(h.app, "carol")
	img := pngBytes(t, 40, 30)
	up, a := h.upload(ta, "type=image&name=cat.png", img, false)
	if !a.OK || !strings.HasPrefix(up.URL, "/v1/files/"+up.ID+"?") {
		t.Fatalf("upload: %s", a.Body)
	}
	resp, body := h.get(up.URL, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, img) || resp.Header.Get("Content-Type") != "image/png" ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("ETag") != `"`+up.ID+`"` ||
		resp.Header.Get("Content-Disposition") != "" || resp.ContentLength != int64(len(img)) {
		t.Fatalf("GET file: %d %v (%d bytes)", resp.StatusCode, resp.Header, len(body))
	}
	resp, body = h.get(up.URL, map[string]string{"Range": "bytes=8-15"})
	if resp.StatusCode != 206 || !bytes.Equal(body, img[8:16]) || resp.Header.Get("Content-Range") != "bytes 8-15/"+itoa(int64(len(img))) {
		t.Fatalf("range: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	resp, body = h.get(up.URL, map[string]string{"Range": "bytes=-4"})
	if resp.StatusCode != 206 || !bytes.Equal(body, img[len(img)-4:]) {
		t.Fatalf("suffix range: %d %q", resp.StatusCode, body)
	}
	if resp, _ = h.get(up.URL, map[string]string{"Range": "bytes=99999-"}); resp.StatusCode != 416 {
		t.Fatalf("unsatisfiable range: %d", resp.StatusCode)
	}
	if resp, _ = h.get(up.URL, map[string]string{"If-None-Match": `"` + up.ID + `"`}); resp.StatusCode != 304 {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}
	// Forged: another user's name in a URL signed for alice.
	u, _ := url.Parse(up.URL)
	q := u.Query()
	q.Set("u", "bob")
	resp, body = h.get(u.Path+"?"+q.Encode(), nil)
	if resp.StatusCode != 403 || !strings.Contains(string(body), "signature") {
		t.Fatalf("forged URL: %d %s", resp.StatusCode, body)
	}
	// A path in the id.
	resp, body = h.get("/v1/files/..%2F..%2Fchat.db?"+u.RawQuery, nil)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "64 lowercase hex") {
		t.Fatalf("path as file id: %d %s", resp.StatusCode, body)
	}
	if _, a := h.fileURL(ta, "..%2Fx"); a.Status != 400 {
		t.Fatalf("path as file id (url): %d %s", a.Status, a.Body)
	}
	// Expiry, by the server's clock.
	h.clock.Add(int64(time.Hour + time.Second))
	resp, body = h.get(up.URL, nil)
	if resp.StatusCode != 403 || !strings.Contains(string(body), "expired") {
		t.Fatalf("expired URL: %d %s", resp.StatusCode, body)
	}

	// Membership: bob may not read it until alice sends it to him; carol
	// never.
	if _, a := h.fileURL(tb, up.ID); a.Status != 403 {
		t.Fatalf("bob before the send: %d %s", a.Status, a.Body)
	}
	ok, data, code, msg := h.action(ta, `{"id":"1","action":"send","to":"bob","type":"image","content":{"file_id":"`+up.ID+`"}}`)
	if !ok {
		t.Fatalf("send with file_id: %s %s", code, msg)
	}
	var ack struct {
		Session uint64 `json:"session_id"`
	}
	json.Unmarshal(data, &ack)
	ok, data, _, _ = h.action(tb, `{"id":"2","action":"sync","session_id":`+itoa(int64(ack.Session))+`}`)
	var page struct {
		Messages []struct {
			Content struct {
				FileID string `json:"file_id"`
				URL    string `json:"url"`
				Size   int64  `json:"size"`
				Width  int    `json:"width"`
				Height int    `json:"height"`
				MIME   string `json:"mime"`
			} `json:"content"`
		} `json:"messages"`
	}
	json.Unmarshal(data, &page)
	if !ok || len(page.Messages) != 1 {
		t.Fatalf("bob's sync: %s", data)
	}
	c := page.Messages[0].Content
	if c.FileID != up.ID || c.URL != "chatd-file:"+up.ID || c.Size != int64(len(img)) || c.Width != 40 || c.Height != 30 || c.MIME != "image/png" {
		t.Fatalf("the server did not fill the content: %+v", c)
	}
	bu, a := h.fileURL(tb, up.ID)
	if !a.OK {
		t.Fatalf("bob after the send: %s", a.Body)
	}
	if resp, body = h.get(bu, nil); resp.StatusCode != 200 || !bytes.Equal(body, img) {
		t.Fatalf("bob's URL: %d", resp.StatusCode)
	}
	if _, a := h.fileURL(tc, up.ID); a.Status != 403 || a.Code != "forbidden" {
		t.Fatalf("carol: %d %s", a.Status, a.Body)
	}
	// Carol may not send a file she cannot read (an id is not a key).
	if ok, _, code, _ := h.action(tc, `{"id":"3","action":"send","to":"bob","type":"image","content":{"file_id":"`+up.ID+`"}}`); ok || code != "forbidden" {
		t.Fatalf("carol sending alice's file: %v %s", ok, code)
	}

	// A non-media file is an attachment, with its name.
	doc, _ := h.upload(ta, "type=file&name=report.html", []byte("<html><script>alert(1)</script></html>"), false)
	resp, _ = h.get(doc.URL, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "report.html") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("HTML file: %d %v", resp.StatusCode, resp.Header)
	}
}

// Messages check what they carry: an upload in a message of another type,
// a malformed or path-like file id, a file of the wrong type, and URLs
// that are not http(s) are refused with bad_request.
func TestMessagesWithFiles(t *testing.T) {
	h := newFileHarness(t, nil)
	ta := h.user(h.app, "alice")
	h.user(h.app, "bob")
	img, _ := h.upload(ta, "type=image", pngBytes(t, 5, 5), false)
	for _, tc := range []struct{ typ, content, want string }{
		{"voice", `{"file_id":"` + img.ID + `","duration":3}`, "uploaded as image, not voice"},
		{"image", `{"file_id":"../../chat.db"}`, "64 lowercase hex"},
		{"image", `{"file_id":"` + strings.Repeat("a", 64) + `"}`, "no file"},
		{"card", `{"title":"x","url":"chatd-file:` + img.ID + `"}`, "only image, voice, video and file"},
		{"image", `{"url":"javascript:alert(1)"}`, "http:// or https://"},
		{"file", `{"url":"data:text/html,<script>1</script>","name":"x"}`, "http:// or https://"},
		{"image", `{"file_id":5}`, "file_id must be a string"},
	} {
		ok, _, code, msg := h.action(ta, `{"id":"1","action":"send","to":"bob","type":"`+tc.typ+`","content":`+tc.content+`}`)
		if ok || code != "bad_request" && code != "not_found" || !strings.Contains(msg, tc.want) {
			t.Errorf("%s %s: ok=%v %s %q, want %q", tc.typ, tc.content, ok, code, msg, tc.want)
		}
	}
	// The url form of an upload works like file_id.
	if ok, _, code, msg := h.action(ta, `{"id":"1","action":"send","to":"bob","type":"image","content":{"url":"chatd-file:`+img.ID+`"}}`); !ok {
		t.Fatalf("chatd-file url: %s %s", code, msg)
	}
}

// Garbage collection: an upload never sent is removed once UploadGrace
// has passed (records, bytes and the app's usage); one that was sent is
// kept while its message exists.
func TestFileGC(t *testing.T) {
	h := newFileHarness(t, func(c *Config) { c.UploadGrace = time.Hour })
	ta := h.user(h.app, "alice")
	h.user(h.app, "bob")
	sent, _ := h.upload(ta, "type=image", pngBytes(t, 6, 6), false)
	unsent, _ := h.upload(ta, "type=file&name=a.txt", []byte("never sent"), false)
	if ok, _, code, msg := h.action(ta, `{"id":"1","action":"send","to":"bob","type":"image","content":{"file_id":"`+sent.ID+`"}}`); !ok {
		t.Fatalf("send: %s %s", code, msg)
	}
	ctx := context.Background()
	if n, err := h.srv.CollectFiles(ctx); err != nil || n != 0 {
		t.Fatalf("GC within the grace period removed %d (%v)", n, err)
	}
	h.clock.Add(int64(time.Hour + time.Minute))
	if n, err := h.srv.CollectFiles(ctx); err != nil || n != 1 {
		t.Fatalf("GC removed %d files (%v), want 1", n, err)
	}
	if _, err := h.core.File(ctx, "shop", unsent.ID); err == nil {
		t.Fatal("the unsent upload's record survived")
	}
	if _, err := h.core.File(ctx, "shop", sent.ID); err != nil {
		t.Fatalf("the sent upload was collected: %v", err)
	}
	if n := h.stored(); n != 1 {
		t.Fatalf("%d files on disk, want 1", n)
	}
	if used, _ := h.core.AppFileBytes(ctx, "shop"); used != sent.Size {
		t.Fatalf("app usage %d, want %d", used, sent.Size)
	}
	u, _ := h.fileURL(ta, sent.ID)
	if resp, _ := h.get(u, nil); resp.StatusCode != 200 {
		t.Fatalf("the kept file: %d", resp.StatusCode)
	}
}
