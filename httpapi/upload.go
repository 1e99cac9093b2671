package httpapi

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"image"
	_ "image/gif" // DecodeConfig formats
	_ "image/jpeg"
	_ "image/png"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// Uploads (docs/http-api.md, "Files"):
//
//   - POST /v1/files?type=&name=      with the user's token
//   - POST /api/v1/files?type=&name=&uid=  signed by the app (uid: on whose behalf)
//
// The body is the file itself (raw), or multipart/form-data whose first
// file part is. The server reads request bodies as streams
// (fasthttp's StreamRequestBody): an upload is copied to a temporary file
// under the uploads folder as it arrives, hashed on the way, and never
// held in memory; every other endpoint reads at most Config.MaxBody
// (serveHTTP). A body over its type's limit is refused too_large as soon
// as its Content-Length says so, before a byte of it is read, or (chunked,
// multipart) as soon as the count passes the limit. The type is sniffed
// from the first bytes, never taken from the name or the header; images
// get their dimensions from the standard library's decoders (DecodeConfig
// reads the header only). The file is fsynced, renamed to its content
// address (uploads/<app>/<first 2 hex>/<sha-256>) and only then recorded
// and acknowledged; on a cluster it is stored in the database first
// (blobs.go). Whatever fails, the temporary file is removed.

// Defaults of the upload settings in Config.
const (
	DefaultMaxImage      = 10 << 20
	DefaultMaxVoice      = 2 << 20
	DefaultMaxVideo      = 50 << 20
	DefaultMaxFile       = 50 << 20
	DefaultUploadQuota   = 10 << 30
	DefaultMaxUploads    = 32
	DefaultUploadTimeout = 10 * time.Minute
	DefaultFileURLTTL    = time.Hour
	DefaultUploadGrace   = 24 * time.Hour
)

// fillUploads fills the upload settings' zero values.
func (c *Config) fillUploads() {
	for _, f := range []struct {
		v   *int64
		def int64
	}{{&c.MaxImage, DefaultMaxImage}, {&c.MaxVoice, DefaultMaxVoice}, {&c.MaxVideo, DefaultMaxVideo}, {&c.MaxFile, DefaultMaxFile}} {
		if *f.v <= 0 {
			*f.v = f.def
		}
	}
	if c.UploadQuota == 0 {
		c.UploadQuota = DefaultUploadQuota
	}
	if c.MaxUploads <= 0 {
		c.MaxUploads = DefaultMaxUploads
	}
	if c.UploadTimeout <= 0 {
		c.UploadTimeout = DefaultUploadTimeout
	}
	if c.FileURLTTL <= 0 {
		c.FileURLTTL = DefaultFileURLTTL
	}
	if c.UploadGrace <= 0 {
		c.UploadGrace = DefaultUploadGrace
	}
	if c.FileGCInterval <= 0 {
		c.FileGCInterval = time.Hour
	}
}

// sniffLen is how much of a file type detection looks at.
const sniffLen = 512

// uploadLimit is the size limit of type t (0: not an upload type).
func (s *Server) uploadLimit(t string) int64 {
	switch t {
	case "image":
		return s.cfg.MaxImage
	case "voice":
		return s.cfg.MaxVoice
	case "video":
		return s.cfg.MaxVideo
	case "file":
		return s.cfg.MaxFile
	}
	return 0
}

var errNoUploads = chat.Errf(chat.CodeUnavailable, "uploads are not configured on this server")

// UploadReply answers an upload.
type UploadReply struct {
	chat.FileMeta
	// Duplicate is set when the app already had this file (same bytes):
	// nothing new was stored.
	Duplicate bool `json:"duplicate,omitempty"`
	// URL is a signed URL of the file for the uploader, valid until
	// ExpiresAt (unix ms); see GET /v1/files/{id}/url.
	URL       string `json:"url"`
	ExpiresAt int64  `json:"expires_at"`
}

// userUpload is POST /v1/files.
func (s *Server) userUpload(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	return s.upload(ctx, r.ident.App, r.ident.UID, nil)
}

// appUpload is POST /api/v1/files. Its signature covers the body, which
// is hashed as it streams (the request is checked by authAppStreamed
// before any of its body is read, then the HMAC is compared at the end).
func (s *Server) appUpload(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	uid := string(ctx.QueryArgs().Peek("uid"))
	if uid != "" {
		if _, err := s.core.User(s.reqCtx, r.app, uid); err != nil {
			return err
		}
	}
	return s.upload(ctx, r.app, uid, r.bodyMAC)
}

// upload streams the body to disk, checks it and records it.
func (s *Server) upload(ctx *fasthttp.RequestCtx, app, uid string, mac *streamMAC) (err error) {
	if s.cfg.UploadDir == "" {
		return errNoUploads
	}
	args := ctx.QueryArgs()
	typ := string(args.Peek("type"))
	limit := s.uploadLimit(typ)
	if limit == 0 {
		return chat.Errf(chat.CodeBadRequest, "type must be image, voice, video or file")
	}
	name := string(args.Peek("name"))
	if len(name) > 255 {
		return chat.Errf(chat.CodeBadRequest, "name longer than 255 bytes")
	}
	// Whatever happens below, an upload whose body was not read to its
	// end leaves the connection unusable: close it after the answer.
	defer func() {
		if err != nil {
			ctx.SetConnectionClose()
		}
	}()
	if cl := ctx.Request.Header.ContentLength(); cl > 0 && int64(cl) > limit+multipartSlack(ctx) {
		return tooLargeUpload(typ, limit)
	}
	if n := s.uploads.Add(1); n > int64(s.cfg.MaxUploads) {
		s.uploads.Add(-1)
		return chat.Errf(chat.CodeUnavailable, "too many uploads in progress (at most "+strconv.Itoa(s.cfg.MaxUploads)+"); retry later")
	}
	defer s.uploads.Add(-1)
	// The body's deadline: BodyTimeout would cut a large upload over a
	// slow link; UploadTimeout still cuts a client that trickles.
	if c := ctx.Conn(); c != nil {
		c.SetReadDeadline(time.Now().Add(s.cfg.UploadTimeout))
	}

	var body io.Reader
	if ctx.Request.IsBodyStream() {
		body = ctx.RequestBodyStream()
	} else { // Body would read a whole stream into memory: only when there is none
		body = bytes.NewReader(ctx.Request.Body())
	}
	if mac != nil {
		body = io.TeeReader(body, mac)
	}
	var part io.Reader = body
	var mp *multipart.Reader
	if ct, params, perr := mime.ParseMediaType(string(ctx.Request.Header.ContentType())); perr == nil && ct == "multipart/form-data" {
		if params["boundary"] == "" {
			return chat.Errf(chat.CodeBadRequest, "multipart/form-data without a boundary")
		}
		mp = multipart.NewReader(body, params["boundary"])
		p, e := firstFilePart(mp)
		if e != nil {
			return e
		}
		part = p
		if name == "" {
			name = p.FileName()
		}
	}
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	if name == "." || name == "/" {
		name = ""
	}

	t, err := s.newTemp("up-*")
	if err != nil {
		return err
	}
	defer t.discard() // nothing left behind on any failure
	f := t.f
	h := sha256.New()
	head := make([]byte, 0, sniffLen)
	n, rerr := copyUpload(io.MultiWriter(f, h), &headWriter{b: &head}, part, limit)
	if rerr != nil {
		return rerr
	}
	if mp != nil {
		// The rest of the form must end properly: a truncated body is
		// not a file.
		if _, e := mp.NextPart(); e != nil && e != io.EOF {
			return chat.Errf(chat.CodeBadRequest, "multipart body is truncated or malformed: "+e.Error())
		}
		if _, e := io.Copy(io.Discard, io.LimitReader(body, 1<<20)); e != nil {
			return chat.Errf(chat.CodeBadRequest, "multipart body is truncated: "+e.Error())
		}
	}
	if mac != nil {
		if e := mac.verify(); e != nil {
			return e
		}
	}
	if n == 0 {
		return chat.Errf(chat.CodeBadRequest, "the file is empty")
	}
	meta := chat.FileMeta{ID: hex.EncodeToString(h.Sum(nil)), App: app, Type: typ, Size: n, Name: name}
	if e := sniff(&meta, head, t.path); e != nil {
		return e
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if bs := s.core.Blobs(); bs != nil {
		// A cluster: in the database before the answer (blobs.go).
		if err := s.putBlob(bs, f, app, meta.ID, n); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	t.f = nil
	dst := s.filePath(app, meta.ID)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	if _, err := os.Stat(dst); err == nil {
		// Stored already (same bytes): keep it, drop ours.
	} else if err := os.Rename(t.path, dst); err != nil {
		return err
	} else {
		t.path = ""
		if err := syncDir(filepath.Dir(dst)); err != nil {
			return err
		}
	}
	got, created, err := s.core.AddFile(s.reqCtx, meta, uid, s.cfg.UploadQuota)
	if err != nil {
		if created := t.path == ""; created {
			os.Remove(dst) // a new file the quota refused: not kept
		}
		return err
	}
	s.uploadsDone.Add(1)
	url, exp, err := s.signFileURL(app, uid, got.ID)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, UploadReply{FileMeta: got, Duplicate: !created, URL: url, ExpiresAt: exp})
	return nil
}

// multipartSlack is what a multipart body may carry beyond its file (the
// part headers and boundaries).
func multipartSlack(ctx *fasthttp.RequestCtx) int64 {
	if bytes.HasPrefix(ctx.Request.Header.ContentType(), []byte("multipart/")) {
		return 64 << 10
	}
	return 0
}

func tooLargeUpload(typ string, limit int64) *chat.Error {
	return chat.Errf(chat.CodeTooLarge, typ+" uploads are limited to "+strconv.FormatInt(limit, 10)+" bytes")
}

// firstFilePart returns the form's first part that carries a file.
func firstFilePart(mp *multipart.Reader) (*multipart.Part, *chat.Error) {
	for i := 0; i < 16; i++ {
		p, err := mp.NextPart()
		if err == io.EOF {
			return nil, chat.Errf(chat.CodeBadRequest, "multipart body has no file part")
		}
		if err != nil {
			return nil, chat.Errf(chat.CodeBadRequest, "multipart body is truncated or malformed: "+err.Error())
		}
		if p.FileName() != "" || p.FormName() == "file" {
			return p, nil
		}
	}
	return nil, chat.Errf(chat.CodeBadRequest, "multipart body has no file part in its first 16 parts")
}

// headWriter keeps the first sniffLen bytes written.
type headWriter struct{ b *[]byte }

func (w *headWriter) Write(p []byte) (int, error) {
	if room := sniffLen - len(*w.b); room > 0 {
		*w.b = append(*w.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// copyUpload copies src to dst (and head) up to limit bytes; one byte
// more is too_large. A read error is a truncated body.
func copyUpload(dst, head io.Writer, src io.Reader, limit int64) (int64, error) {
	buf := make([]byte, 64<<10)
	var n int64
	for {
		k, err := src.Read(buf)
		if k > 0 {
			n += int64(k)
			if n > limit {
				return n, chat.Errf(chat.CodeTooLarge, "upload over its type's limit of "+strconv.FormatInt(limit, 10)+" bytes")
			}
			head.Write(buf[:k])
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return n, werr
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				return n, chat.Errf(chat.CodeBadRequest, "upload too slow: not finished within the upload timeout")
			}
			return n, chat.Errf(chat.CodeBadRequest, "upload body is truncated: "+err.Error())
		}
	}
}

// sniff sets meta's MIME (and an image's dimensions) from the content and
// refuses content that does not match the upload's type.
func sniff(meta *chat.FileMeta, head []byte, path string) *chat.Error {
	mt := detectType(head)
	meta.MIME = mt
	major, _, _ := strings.Cut(mt, "/")
	switch meta.Type {
	case "image":
		switch mt {
		case "image/png", "image/jpeg", "image/gif":
			f, err := os.Open(path)
			if err != nil {
				return chat.Errf(chat.CodeInternal, "reopen upload")
			}
			defer f.Close()
			cfg, _, err := image.DecodeConfig(bufio.NewReader(f))
			if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
				return chat.Errf(chat.CodeBadRequest, "the image is not a valid "+mt+" (its header does not decode)")
			}
			meta.Width, meta.Height = cfg.Width, cfg.Height
		case "image/webp":
			// Accepted without dimensions: the standard library has no
			// WebP decoder.
		default:
			return chat.Errf(chat.CodeBadRequest, "an image upload must be PNG, JPEG, GIF or WebP; the content is "+mt)
		}
	case "voice":
		if mt == "video/webm" {
			// Browsers record voice as WebM (Opus); the container does
			// not say whether a video track follows.
			meta.MIME, major = "audio/webm", "audio"
		}
		if major != "audio" {
			return chat.Errf(chat.CodeBadRequest, "a voice upload must be audio (AAC/M4A, MP3, Ogg/Opus, WAV, AMR, WebM); the content is "+mt)
		}
	case "video":
		if major != "video" {
			return chat.Errf(chat.CodeBadRequest, "a video upload must be video (MP4, WebM, QuickTime); the content is "+mt)
		}
	case "file":
		// Anything; served as an attachment unless image, audio or video.
	}
	return nil
}

// detectType names the content type of a file from its first bytes:
// net/http.DetectContentType (the WHATWG sniffing algorithm), refined by
// the magic numbers of the audio and video formats chat clients record,
// which it reports as application/octet-stream or confuses.
func detectType(b []byte) string {
	switch {
	case len(b) >= 12 && string(b[4:8]) == "ftyp":
		brand := string(b[8:12])
		switch {
		case strings.HasPrefix(brand, "M4A"), strings.HasPrefix(brand, "M4B"):
			return "audio/mp4"
		case brand == "qt  ":
			return "video/quicktime"
		case strings.HasPrefix(brand, "3gp"), strings.HasPrefix(brand, "3g2"):
			return "video/3gpp"
		}
		return "video/mp4"
	case bytes.HasPrefix(b, []byte("#!AMR")):
		return "audio/amr"
	case bytes.HasPrefix(b, []byte("\x1a\x45\xdf\xa3")):
		return "video/webm" // EBML: WebM or Matroska (voice recorded by browsers too; see sniff)
	case bytes.HasPrefix(b, []byte("OggS")):
		if bytes.Contains(b, []byte("theora")) {
			return "video/ogg"
		}
		return "audio/ogg"
	case bytes.HasPrefix(b, []byte("ID3")), len(b) >= 2 && b[0] == 0xFF && b[1]&0xE0 == 0xE0 && b[1]&0x06 != 0:
		if len(b) >= 2 && b[0] == 0xFF && b[1]&0xF6 == 0xF0 {
			return "audio/aac" // ADTS
		}
		return "audio/mpeg"
	}
	mt := http.DetectContentType(b)
	mt, _, _ = strings.Cut(mt, ";")
	return mt
}

// syncDir fsyncs a folder so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// tempFile is a temporary file in the uploads folder's tmp, removed by
// discard unless it was renamed into place (path cleared).
type tempFile struct {
	f    *os.File // nil once closed
	path string   // "" once renamed
}

// newTemp creates a temporary file in the uploads folder's tmp.
func (s *Server) newTemp(pattern string) (*tempFile, error) {
	dir := filepath.Join(s.cfg.UploadDir, "tmp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &tempFile{f: f, path: f.Name()}, nil
}

// discard closes the file if open and removes it unless renamed.
func (t *tempFile) discard() {
	if t.f != nil {
		t.f.Close()
	}
	if t.path != "" {
		os.Remove(t.path)
	}
}

// filePath is where file id of app is stored. Both are validated (app id
// by the core, id by chat.ValidFileID): no path can be built from them.
func (s *Server) filePath(app, id string) string {
	return filepath.Join(s.cfg.UploadDir, app, id[:2], id)
}

// streamMAC checks an app signature over a streamed body: the prefix
// (method, URI, timestamp, nonce) is written at the start, the body as it
// is read, and the result compared at the end.
type streamMAC struct {
	h     hash.Hash
	want  []byte
	srv   *Server
	app   string
	nonce []byte
	exp   int64 // when the nonce may be forgotten
	now   int64
}

func (m *streamMAC) Write(p []byte) (int, error) { return m.h.Write(p) }

// verify checks the signature over everything written, then records the
// nonce (only a proven request may take a place in the replay cache).
func (m *streamMAC) verify() *chat.Error {
	if !hmac.Equal(m.h.Sum(nil), m.want) {
		return errBadSig
	}
	switch m.srv.nonces.add(kindApp, m.app, m.nonce, m.exp, m.now) {
	case nonceReplay:
		return errReplay
	case nonceFull:
		return errNoncesFull
	}
	return nil
}
