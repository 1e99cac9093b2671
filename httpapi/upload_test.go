package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp/fasthttputil"

	"chatd/chat"
	"chatd/chat/memstore"
	"chatd/httpapi/apiclient"
)

// fileHarness is a harness whose core and server share a replaceable
// clock, with uploads under a temporary folder.
type fileHarness struct {
	*harness
	clock *atomic.Int64 // unix ns
	dir   string        // the uploads folder
	app   *apiclient.Client
}

func newFileHarness(t *testing.T, mutate func(*Config)) *fileHarness {
	t.Helper()
	clock := new(atomic.Int64)
	clock.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	fh := startFileNode(t, memstore.New(), false, clock, mutate)
	fh.app = fh.harness.app("shop")
	return fh
}

// startFileNode starts a core on st (a node of a cluster when shared) and
// its server, with uploads under a temporary folder, on clock.
func startFileNode(t *testing.T, st chat.Store, shared bool, clock *atomic.Int64, mutate func(*Config)) *fileHarness {
	t.Helper()
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	core, err := chat.New(chat.Config{Now: now, SharedStore: shared}, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	coreDone := make(chan error, 1)
	go func() { coreDone <- core.Run(ctx) }()
	dir := filepath.Join(t.TempDir(), "uploads")
	cfg := Config{AdminKey: testAdminKey, Version: "v-test", UploadDir: dir, Now: now}
	if mutate != nil {
		mutate(&cfg)
	}
	h := &harness{t: t, core: core, logBuf: &syncBuffer{}}
	h.srv, err = New(cfg, core, zerolog.New(h.logBuf))
	if err != nil {
		t.Fatal(err)
	}
	h.ln = fasthttputil.NewInmemoryListener()
	srvDone := make(chan error, 1)
	go func() { srvDone <- h.srv.Serve(ctx, h.ln) }()
	<-h.srv.Ready()
	h.local, h.remote = h.client(loopbackPeer), h.client(remotePeer)
	h.admin = &apiclient.Client{BaseURL: baseURL, AdminKey: testAdminKey, HTTP: h.local}
	t.Cleanup(func() {
		cancel()
		<-srvDone
		<-coreDone
	})
	return &fileHarness{harness: h, clock: clock, dir: dir}
}

// pngBytes is a real w×h PNG.
func pngBytes(t *testing.T, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := 0; x < w; x++ {
		img.Set(x, x%h, color.RGBA{R: 200, A: 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var (
	m4aBytes = append([]byte("\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42isom\x00\x00\x00\x08free"), bytes.Repeat([]byte{1}, 300)...)
	mp4Bytes = append([]byte("\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41\x00\x00\x00\x08free"), bytes.Repeat([]byte{2}, 300)...)
)

type upReply struct {
	ID        string `json:"file_id"`
	Type      string `json:"type"`
	MIME      string `json:"mime"`
	Size      int64  `json:"size"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	Name      string `json:"name"`
	Duplicate bool   `json:"duplicate"`
	URL       string `json:"url"`
	ExpiresAt int64  `json:"expires_at"`
}

// upload posts body raw; chunked sends it without a Content-Length.
func (h *fileHarness) upload(token, query string, body []byte, chunked bool) (upReply, answer) {
	h.t.Helper()
	var rd io.Reader = bytes.NewReader(body)
	if chunked {
		rd = io.MultiReader(bytes.NewReader(body)) // no length: chunked
	}
	req, _ := http.NewRequest("POST", baseURL+"/v1/files?"+query, rd)
	req.Header.Set(HeaderApp, "shop")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/octet-stream")
	a := do(h.t, h.remote, req)
	var r upReply
	if a.OK {
		if err := json.Unmarshal(a.Data, &r); err != nil {
			h.t.Fatal(err)
		}
	}
	return r, a
}

// leftovers lists the temporary files of the uploads folder.
func (h *fileHarness) leftovers() []string {
	ents, _ := os.ReadDir(filepath.Join(h.dir, "tmp"))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// stored counts the stored files of the app.
func (h *fileHarness) stored() int {
	n := 0
	filepath.WalkDir(filepath.Join(h.dir, "shop"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// Each type is accepted with its sniffed type (and an image's size), up to
// its limit; one byte more is too_large, whether the Content-Length says
// so or a chunked body runs past it. Nothing is left on disk by a refusal.
func TestUploadTypesAndLimits(t *testing.T) {
	h := newFileHarness(t, func(c *Config) { c.MaxImage, c.MaxVoice, c.MaxVideo, c.MaxFile = 4000, 1000, 2000, 3000 })
	ta := h.user(h.app, "alice")
	img := pngBytes(t, 30, 20)
	for _, tc := range []struct {
		typ, mime string
		body      []byte
	}{
		{"image", "image/png", img},
		{"voice", "audio/mp4", m4aBytes},
		{"video", "video/mp4", mp4Bytes},
		{"file", "text/plain", []byte("minutes of the meeting\n")},
	} {
		r, a := h.upload(ta, "type="+tc.typ+"&name=x", tc.body, false)
		if !a.OK || r.Type != tc.typ || r.MIME != tc.mime || r.Size != int64(len(tc.body)) || len(r.ID) != 64 {
			t.Fatalf("%s upload: %+v %s", tc.typ, r, a.Body)
		}
		if tc.typ == "image" && (r.Width != 30 || r.Height != 20) {
			t.Fatalf("image dimensions %dx%d", r.Width, r.Height)
		}
	}
	big := append(append([]byte(nil), img...), make([]byte, 4001-len(img))...)
	for _, chunked := range []bool{false, true} {
		_, a := h.upload(ta, "type=image", big, chunked)
		if a.Status != 413 || a.Code != "too_large" {
			t.Fatalf("image over the limit (chunked %v): %d %s", chunked, a.Status, a.Body)
		}
	}
	_, a := h.upload(ta, "type=voice", append(m4aBytes, make([]byte, 1000)...), false)
	if a.Status != 413 || !strings.Contains(a.Msg, "1000 bytes") {
		t.Fatalf("voice over the limit: %d %s", a.Status, a.Body)
	}
	_, a = h.upload(ta, "type=sticker", img, false)
	if a.Status != 400 || !strings.Contains(a.Msg, "type must be") {
		t.Fatalf("unknown type: %d %s", a.Status, a.Body)
	}
	_, a = h.upload(ta, "type=file", nil, false)
	if a.Status != 400 || !strings.Contains(a.Msg, "empty") {
		t.Fatalf("empty file: %d %s", a.Status, a.Body)
	}
	if l := h.leftovers(); len(l) != 0 {
		t.Fatalf("temporary files left: %v", l)
	}
	if n := h.stored(); n != 4 {
		t.Fatalf("%d files stored, want 4", n)
	}
}

// The type comes from the content: an HTML page named .png, or a PNG
// offered as a video, is refused, and nothing is stored.
func TestUploadSniffRefusesDisguisedFiles(t *testing.T) {
	h := newFileHarness(t, nil)
	ta := h.user(h.app, "alice")
	html := []byte("<!DOCTYPE html><html><script>alert(document.cookie)</script></html>")
	_, a := h.upload(ta, "type=image&name=cat.png", html, false)
	if a.Status != 400 || a.Code != "bad_request" || !strings.Contains(a.Msg, "text/html") {
		t.Fatalf("HTML as an image: %d %s", a.Status, a.Body)
	}
	svg := []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>`)
	if _, a = h.upload(ta, "type=image&name=x.svg", svg, false); a.Status != 400 {
		t.Fatalf("SVG as an image: %d %s", a.Status, a.Body)
	}
	if _, a = h.upload(ta, "type=video", pngBytes(t, 4, 4), false); a.Status != 400 || !strings.Contains(a.Msg, "image/png") {
		t.Fatalf("PNG as a video: %d %s", a.Status, a.Body)
	}
	if _, a = h.upload(ta, "type=voice", mp4Bytes, false); a.Status != 400 || !strings.Contains(a.Msg, "video/mp4") {
		t.Fatalf("video as voice: %d %s", a.Status, a.Body)
	}
	// A PNG signature over garbage: sniffed as PNG, but its header does
	// not decode.
	if _, a = h.upload(ta, "type=image", append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 64)...), false); a.Status != 400 || !strings.Contains(a.Msg, "does not decode") {
		t.Fatalf("broken PNG: %d %s", a.Status, a.Body)
	}
	if h.stored() != 0 || len(h.leftovers()) != 0 {
		t.Fatalf("refused uploads left files: %d stored, tmp %v", h.stored(), h.leftovers())
	}
}

// The same bytes twice are one file: same id, stored once, the second
// answer says duplicate.
func TestUploadDedup(t *testing.T) {
	h := newFileHarness(t, nil)
	ta, tb := h.user(h.app, "alice"), h.user(h.app, "bob")
	img := pngBytes(t, 8, 8)
	r1, a1 := h.upload(ta, "type=image", img, false)
	r2, a2 := h.upload(tb, "type=image", img, true)
	if !a1.OK || !a2.OK || r1.ID != r2.ID || r1.Duplicate || !r2.Duplicate {
		t.Fatalf("dedup: %+v %+v", r1, r2)
	}
	if n := h.stored(); n != 1 {
		t.Fatalf("%d files stored, want 1", n)
	}
	used, err := h.core.AppFileBytes(context.Background(), "shop")
	if err != nil || used != int64(len(img)) {
		t.Fatalf("app usage %d %v, want %d", used, err, len(img))
	}
	fams := scrape(t, h.local)
	if n := value(t, fams, "chatd_http_uploads_total"); n != 2 {
		t.Fatalf("chatd_http_uploads_total %v, want 2", n)
	}
	if n := value(t, fams, "chatd_http_uploads_in_progress"); n != 0 {
		t.Fatalf("chatd_http_uploads_in_progress %v, want 0", n)
	}
}

// A multipart form works like a raw body (its file name kept for
// display); a truncated one is refused and leaves nothing.
func TestUploadMultipart(t *testing.T) {
	h := newFileHarness(t, nil)
	ta := h.user(h.app, "alice")
	form := func(data []byte) (*bytes.Buffer, string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.WriteField("note", "ignored")
		fw, _ := mw.CreateFormFile("file", "../../holiday photo.png")
		fw.Write(data)
		mw.Close()
		return &b, mw.FormDataContentType()
	}
	post := func(body []byte, ct string) answer {
		req, _ := http.NewRequest("POST", baseURL+"/v1/files?type=image", bytes.NewReader(body))
		req.Header.Set(HeaderApp, "shop")
		req.Header.Set("Authorization", "Bearer "+ta)
		req.Header.Set("Content-Type", ct)
		return do(t, h.remote, req)
	}
	img := pngBytes(t, 12, 7)
	b, ct := form(img)
	a := post(b.Bytes(), ct)
	var r upReply
	json.Unmarshal(a.Data, &r)
	if !a.OK || r.Width != 12 || r.Size != int64(len(img)) || r.Name != "holiday photo.png" {
		t.Fatalf("multipart upload: %+v %s", r, a.Body)
	}
	b, ct = form(pngBytes(t, 13, 7))
	cut := b.Bytes()[:b.Len()-20] // the closing boundary is missing
	if a = post(cut, ct); a.Status != 400 || !strings.Contains(a.Msg, "truncated") {
		t.Fatalf("truncated multipart: %d %s", a.Status, a.Body)
	}
	if h.stored() != 1 || len(h.leftovers()) != 0 {
		t.Fatalf("truncated upload left files: %d stored, tmp %v", h.stored(), h.leftovers())
	}
}

// The host backend uploads with its app signature, which covers the
// streamed body: a body that differs from the signed one is refused and
// not kept.
func TestAppUpload(t *testing.T) {
	h := newFileHarness(t, nil)
	h.user(h.app, "alice")
	a := h.harness.app("other") // another app, to sign with the wrong key
	img := pngBytes(t, 9, 9)
	send := func(key string, body []byte, sig string) answer {
		req := rawReq(t, reqOpts{method: "POST", path: "/api/v1/files?type=image&uid=alice", body: img, key: key, app: "shop"})
		if sig != "" {
			req.Header.Set(HeaderSignature, sig)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		return do(t, h.local, req)
	}
	if r := send(h.app.Secret, img, ""); !r.OK {
		t.Fatalf("app upload: %s", r.Body)
	}
	other := pngBytes(t, 9, 10)
	other = other[:len(img)]
	if r := send(h.app.Secret, other, ""); r.Status != 401 || r.Msg != "bad signature" {
		t.Fatalf("tampered body: %d %s", r.Status, r.Body)
	}
	if r := send(a.Secret, img, ""); r.Status != 401 {
		t.Fatalf("wrong key: %d %s", r.Status, r.Body)
	}
	if h.stored() != 1 || len(h.leftovers()) != 0 {
		t.Fatalf("refused app uploads left files: %d stored, tmp %v", h.stored(), h.leftovers())
	}
}

// Uploads have their own cap (an upload over it is refused before its
// body is read), a deadline that a trickling client cannot stretch, and
// a per-app quota that only new bytes count against.
func TestUploadCapTimeoutQuota(t *testing.T) {
	h := newFileHarness(t, func(c *Config) {
		c.MaxUploads, c.UploadTimeout, c.UploadQuota = 1, 300*time.Millisecond, 1000
	})
	ta := h.user(h.app, "alice")
	// A client that sends half its body, then nothing.
	pr, pw := io.Pipe()
	slow := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("POST", baseURL+"/v1/files?type=file", pr)
		req.ContentLength = 20000 // over the 8 KiB fasthttp reads before calling the handler
		req.Header.Set(HeaderApp, "shop")
		req.Header.Set("Authorization", "Bearer "+ta)
		slow <- do(t, h.remote, req)
	}()
	pw.Write(bytes.Repeat([]byte("a"), 10000))
	waitFor(t, "the slow upload to start", func() bool { return h.srv.uploads.Load() == 1 })
	if _, a := h.upload(ta, "type=file", []byte("another"), false); a.Status != 503 || a.Code != "unavailable" {
		t.Fatalf("upload over the cap: %d %s", a.Status, a.Body)
	}
	select {
	case a := <-slow:
		if a.Status != 400 || !strings.Contains(a.Msg, "too slow") {
			t.Fatalf("trickling upload: %d %s", a.Status, a.Body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the trickling upload was not cut off")
	}
	pw.Close()
	if len(h.leftovers()) != 0 || h.stored() != 0 {
		t.Fatalf("the cut upload left files: %v", h.leftovers())
	}
	// Quota: 600 + 600 > 1000, but the same 600 twice is one file.
	f1 := bytes.Repeat([]byte("x"), 600)
	if _, a := h.upload(ta, "type=file", f1, false); !a.OK {
		t.Fatalf("first file: %s", a.Body)
	}
	if r, a := h.upload(ta, "type=file", f1, false); !a.OK || !r.Duplicate {
		t.Fatalf("same file again: %s", a.Body)
	}
	if _, a := h.upload(ta, "type=file", bytes.Repeat([]byte("y"), 600), false); a.Status != 413 || !strings.Contains(a.Msg, "quota") {
		t.Fatalf("over the quota: %d %s", a.Status, a.Body)
	}
	if n := h.stored(); n != 1 {
		t.Fatalf("%d files stored, want 1", n)
	}
}
