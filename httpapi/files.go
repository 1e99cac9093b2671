package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// Serving uploads (docs/http-api.md, "Files"):
//
//   - GET /v1/files/{id}/url   with the user's token: a signed URL, for
//     the uploader or a member of a session the file was sent into
//   - GET /v1/files/{id}?app=&u=&exp=&sig=   the file, for whoever holds
//     a signed URL that has not expired (so that <img src> works)
//
// URLs are signed with a key derived from the server admin key, so they
// survive restarts and die with a new admin key. The nodes of a cluster
// each have their own admin key: there they are signed with a key derived
// from the app's secret, which every node reads from the database, so a
// URL one node gave works on every node (fileURLKeyOf).

// fileURLKey derives the URL-signing key from the admin key.
func fileURLKey(adminKey string) []byte {
	m := hmac.New(sha256.New, []byte(adminKey))
	m.Write([]byte("chatd file URL signing key v1"))
	return m.Sum(nil)
}

func (s *Server) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

// fileURLKeyOf returns the key that signs app's file URLs: s.fileKey
// on a single node; on a cluster one derived from the app's secret (apps
// and their secrets never change), kept once read.
func (s *Server) fileURLKeyOf(app string) ([]byte, error) {
	if s.core.Blobs() == nil {
		return s.fileKey, nil
	}
	if k, ok := s.blobs.urlKeys.Load(app); ok {
		return k.([]byte), nil
	}
	a, err := s.core.App(s.reqCtx, app)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, []byte(a.Secret))
	m.Write([]byte("chatd cluster file URL signing key v1"))
	k := m.Sum(nil)
	s.blobs.urlKeys.Store(app, k)
	return k, nil
}

// fileSig is the signature of a file URL.
func fileSig(key []byte, app, uid, id string, exp int64) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(app + "\n" + uid + "\n" + id + "\n" + strconv.FormatInt(exp, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// signFileURL returns a path-absolute signed URL of a file for uid, and
// its expiry (unix ms).
func (s *Server) signFileURL(app, uid, id string) (string, int64, error) {
	key, err := s.fileURLKeyOf(app)
	if err != nil {
		return "", 0, err
	}
	exp := s.now().Add(s.cfg.FileURLTTL).Unix()
	q := url.Values{"app": {app}, "u": {uid}, "exp": {strconv.FormatInt(exp, 10)}, "sig": {fileSig(key, app, uid, id, exp)}}
	return "/v1/files/" + id + "?" + q.Encode(), exp * 1000, nil
}

// FileURLReply answers GET /v1/files/{id}/url.
type FileURLReply struct {
	URL       string `json:"url"` // path-absolute: prefix the server's base URL
	ExpiresAt int64  `json:"expires_at"`
}

// userFileURL is GET /v1/files/{id}/url.
func (s *Server) userFileURL(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	if s.cfg.UploadDir == "" {
		return errNoUploads
	}
	if !chat.ValidFileID(r.param) {
		return errBadFileID
	}
	if err := s.core.CanReadFile(s.reqCtx, r.ident.App, r.ident.UID, r.param); err != nil {
		return err
	}
	u, exp, err := s.signFileURL(r.ident.App, r.ident.UID, r.param)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, FileURLReply{URL: u, ExpiresAt: exp})
	return nil
}

var (
	errBadFileID   = chat.Errf(chat.CodeBadRequest, "a file id is 64 lowercase hex digits, as the upload answered")
	errFileURLSig  = chat.Errf(chat.CodeForbidden, "bad file URL signature: ask GET /v1/files/{id}/url for a URL")
	errFileURLGone = chat.Errf(chat.CodeForbidden, "file URL expired: ask GET /v1/files/{id}/url for a fresh one")
)

// serveFile is GET /v1/files/{id} with a signed URL.
func (s *Server) serveFile(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	if s.cfg.UploadDir == "" {
		return errNoUploads
	}
	id := r.param
	if !chat.ValidFileID(id) {
		return errBadFileID
	}
	args := ctx.QueryArgs()
	app, uid := string(args.Peek("app")), string(args.Peek("u"))
	exp, err := strconv.ParseInt(string(args.Peek("exp")), 10, 64)
	if err != nil || !validAppID(app) {
		return errFileURLSig
	}
	key, err := s.fileURLKeyOf(app)
	if ce := (*chat.Error)(nil); errors.As(err, &ce) && ce.Code == chat.CodeNotFound {
		return errFileURLSig // no such app: nothing it could have signed
	} else if err != nil {
		return err
	}
	if !hmac.Equal([]byte(fileSig(key, app, uid, id, exp)), args.Peek("sig")) {
		return errFileURLSig
	}
	if s.now().Unix() > exp {
		return errFileURLGone
	}
	meta, err := s.core.File(s.reqCtx, app, id)
	if err != nil {
		return err
	}
	h := &ctx.Response.Header
	etag := `"` + id + `"`
	h.Set(fasthttp.HeaderETag, etag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set(fasthttp.HeaderCacheControl, "private, max-age="+strconv.FormatInt(max(exp-s.now().Unix(), 0), 10))
	h.Set(fasthttp.HeaderAcceptRanges, "bytes")
	h.SetContentType(meta.MIME)
	if !inline(meta.MIME) {
		name := meta.Name
		if name == "" {
			name = id
		}
		h.Set(fasthttp.HeaderContentDisposition, "attachment; filename*=UTF-8''"+url.PathEscape(name))
	}
	if inm := ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch); len(inm) > 0 && strings.Contains(string(inm), etag) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return nil
	}
	f, err := os.Open(s.filePath(app, id))
	if bs := s.core.Blobs(); bs != nil && errors.Is(err, fs.ErrNotExist) {
		// A cluster node's folder is a cache of the database (blobs.go).
		if err := s.fetchBlob(bs, app, id, meta.Size); err != nil {
			return err
		}
		f, err = os.Open(s.filePath(app, id))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return errFileGone(id)
	}
	if err != nil {
		return err
	}
	size := meta.Size
	start, n := int64(0), size
	if rg := ctx.Request.Header.Peek(fasthttp.HeaderRange); len(rg) > 0 {
		a, b, ok := parseRange(string(rg), size)
		if !ok {
			f.Close()
			h.Set(fasthttp.HeaderContentRange, "bytes */"+strconv.FormatInt(size, 10))
			writeErrorStatus(ctx, fasthttp.StatusRequestedRangeNotSatisfiable,
				chat.Errf(chat.CodeBadRequest, "range not satisfiable: the file has "+strconv.FormatInt(size, 10)+" bytes"))
			h.SetContentType(meta.MIME)
			return nil
		}
		if a >= 0 {
			start, n = a, b-a+1
			h.Set(fasthttp.HeaderContentRange, "bytes "+strconv.FormatInt(a, 10)+"-"+strconv.FormatInt(b, 10)+"/"+strconv.FormatInt(size, 10))
			ctx.SetStatusCode(fasthttp.StatusPartialContent)
		}
	}
	if ctx.Response.StatusCode() != fasthttp.StatusPartialContent {
		ctx.SetStatusCode(fasthttp.StatusOK)
	}
	if ctx.IsHead() {
		f.Close()
		h.SetContentLength(int(n))
		return nil
	}
	ctx.SetBodyStream(&sectionFile{SectionReader: io.NewSectionReader(f, start, n), f: f}, int(n))
	return nil
}

// inline reports whether a type is shown from chatd's origin (images,
// audio and video, never SVG); anything else is an attachment.
func inline(mt string) bool {
	switch mt {
	case "image/png", "image/jpeg", "image/gif", "image/webp":
		return true
	}
	return strings.HasPrefix(mt, "audio/") || strings.HasPrefix(mt, "video/")
}

// parseRange parses a single "bytes=" range of a size-byte file into
// inclusive offsets. a < 0 means "serve it whole" (several ranges, which
// RFC 9110 lets a server ignore); ok is false when unsatisfiable.
func parseRange(v string, size int64) (a, b int64, ok bool) {
	spec, found := strings.CutPrefix(v, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return -1, -1, true
	}
	lo, hi, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false
	}
	switch {
	case lo == "":
		k, err := strconv.ParseInt(hi, 10, 64)
		if err != nil || k <= 0 || size == 0 {
			return 0, 0, false
		}
		return max(size-k, 0), size - 1, true
	default:
		x, err := strconv.ParseInt(lo, 10, 64)
		if err != nil || x < 0 || x >= size {
			return 0, 0, false
		}
		y := size - 1
		if hi != "" {
			if y, err = strconv.ParseInt(hi, 10, 64); err != nil || y < x {
				return 0, 0, false
			}
			y = min(y, size-1)
		}
		return x, y, true
	}
}

// sectionFile is a part of an open file that closes it when fasthttp is
// done with the body.
type sectionFile struct {
	*io.SectionReader
	f *os.File
}

func (s *sectionFile) Close() error { return s.f.Close() }

// validAppID is chat's app id rule ([a-z0-9_-], 1-64): nothing a path can
// be built from.
func validAppID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

// ---- garbage collection

// CollectFiles runs the uploads' garbage collection once: for every app,
// the core drops references to messages that are gone and the records of
// files with no reference left once they are UploadGrace old (never sent,
// or all their messages gone); their bytes are removed here. Temporary
// files older than UploadTimeout (an upload cut by a crash) go too. It
// returns the files removed.
func (s *Server) CollectFiles(ctx context.Context) (int, error) {
	if s.cfg.UploadDir == "" {
		return 0, nil
	}
	apps, err := s.core.Apps(ctx)
	if err != nil {
		return 0, err
	}
	removed, evicted := 0, 0
	bs := s.core.Blobs()
	for _, a := range apps {
		gc, err := s.core.CollectFiles(ctx, a.ID, s.cfg.UploadGrace.Milliseconds())
		if err != nil {
			return removed, err
		}
		for _, m := range gc.Removed {
			if err := os.Remove(s.filePath(a.ID, m.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn().Err(err).Str("app", a.ID).Str("file", m.ID).Msg("http api: remove collected upload")
				continue
			}
			removed++
		}
		if bs != nil {
			evicted += s.sweepBlobs(ctx, bs, a.ID, gc.Kept)
		}
	}
	if evicted > 0 {
		s.log.Info().Int("removed", evicted).Msg("http api: copies of uploads collected by other nodes removed")
	}
	tmp := filepath.Join(s.cfg.UploadDir, "tmp")
	if ents, err := os.ReadDir(tmp); err == nil {
		for _, e := range ents {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > s.cfg.UploadTimeout+time.Minute {
				os.Remove(filepath.Join(tmp, e.Name()))
			}
		}
	}
	return removed, nil
}

// runFileGC collects uploads every FileGCInterval until ctx ends.
func (s *Server) runFileGC(ctx context.Context) {
	t := time.NewTicker(s.cfg.FileGCInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.CollectFiles(ctx); err != nil {
				s.log.Error().Err(err).Msg("http api: upload garbage collection failed")
			} else if n > 0 {
				s.log.Info().Int("removed", n).Msg("http api: unreferenced uploads removed")
			}
		}
	}
}
