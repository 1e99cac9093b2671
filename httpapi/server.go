// Package httpapi is chatd's HTTP side listener (fasthttp): the signed server
// admin API, the signed app API that host backends call, the token user API
// for clients that cannot hold a WebSocket, the health check, GET /metrics
// (metrics.go) and the live event stream (subscribe.go). It
// translates HTTP to calls on *chat.Core and back; it knows nothing about
// gnet or bbolt.
//
// The wire format, the routes and the request-signing algorithm are
// documented in docs/http-api.md; metrics and the live stream in
// docs/operations.md.
package httpapi

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"chatd/chat"
	"chatd/internal/demo"
	"chatd/internal/metrics"
)

// Defaults for the zero values of Config.
const (
	DefaultAddr            = ":22887"
	DefaultMaxBody         = 1 << 20
	DefaultSignatureWindow = 5 * time.Minute
	DefaultMaxConns        = 256
	// DefaultMaxNonces caps the replay cache's app keys together. About 48
	// bytes per entry: 1,000,000 entries is ~48 MiB in the worst case.
	DefaultMaxNonces = 1_000_000
	// DefaultSignatureAhead is how far ahead of the server clock a
	// signed request's timestamp may be.
	DefaultSignatureAhead = time.Minute
)

// shutdownGrace bounds how long Run waits for in-flight requests after its
// context ends.
const shutdownGrace = 5 * time.Second

// shutdownFallback is how long POST /admin/v1/shutdown waits for its reply's
// connection to close before calling Config.Shutdown anyway.
const shutdownFallback = 2 * time.Second

// Config configures the listener. Zero values mean the documented defaults.
type Config struct {
	// Addr is the TCP listen address. Zero means ":22887". "127.0.0.1:0"
	// picks a free port; Addr() reports it after Ready.
	Addr string
	// AdminKey is the server admin key that signs /admin/v1/* requests.
	// Required: New fails without it.
	AdminKey string
	// AdminFromAnywhere lets /admin/v1/* answer clients that are not on a
	// loopback address. By default the admin API is loopback-only (403).
	AdminFromAnywhere bool
	// MaxBody caps a request body in bytes. Zero means 1 MiB. Larger bodies
	// are answered 413 too_large.
	MaxBody int
	// SignatureWindow is how far a signed request's timestamp may be
	// behind the server clock (ahead, SignatureAhead is the tighter
	// bound). Zero means 5 minutes.
	SignatureWindow time.Duration
	// SignatureAhead is how far ahead of the server clock a signed
	// request's timestamp may be; behind, SignatureWindow applies. A nonce
	// is remembered until its timestamp leaves the window, so this bounds
	// how long one lives: at most SignatureWindow + SignatureAhead. Zero
	// means 1 minute, or SignatureWindow if that is shorter.
	SignatureAhead time.Duration
	// MaxNonces caps the replay cache's live nonces of all app keys
	// together. Zero means 1,000,000. When it is full, or a key's own
	// partition is (MaxNoncesPerKey), that key's signed requests are
	// answered 429 rate_limited.
	MaxNonces int
	// MaxNoncesPerKey caps the live nonces of one key (an app, or the
	// admin key, whose partition is outside MaxNonces), so that one app's
	// traffic cannot lock the other apps or the admin out. Zero means half
	// of MaxNonces.
	MaxNoncesPerKey int
	// TrustedProxies are the peers whose X-Forwarded-For / X-Real-IP headers
	// are believed. Requests from any other peer are judged by the peer
	// address alone.
	TrustedProxies []netip.Prefix
	// MaxConns caps concurrently served connections (the general lane, see
	// admit.go). Zero means 256. Connections over the cap get a 503 and are
	// closed at once, so they never pile up file descriptors (the process
	// shares a 20,000-fd limit with the WebSocket listener).
	MaxConns int
	// MaxConnsPerIP caps the general-lane connections open from one
	// client address (the TCP peer; trusted proxies are exempt). Zero
	// means 64. More get 429 rate_limited and are closed at once.
	MaxConnsPerIP int
	// ReservedConns are connection slots beyond MaxConns that only
	// ReservedPeers may take, once MaxConns are in use; they serve
	// /healthz, the admin API, /metrics and /debug, one request per
	// connection (anything else: 503). Zero means 16.
	ReservedConns int
	// ReservedPeers are the addresses that may use the reserved lane. Nil
	// means loopback (127.0.0.0/8, ::1): the operator's chatctl and local
	// health checks; an empty non-nil list means nobody. Add a load
	// balancer's health-check range here.
	ReservedPeers []netip.Prefix
	// HeaderTimeout bounds the read of a request's line and headers, from
	// the connection's start (or, on a kept-alive connection, from the
	// request's first byte). It is a deadline, not an idle timer: bytes
	// trickling in do not extend it. Zero means 10 s.
	HeaderTimeout time.Duration
	// BodyTimeout bounds the read of a request's body, from the end of
	// its headers; a deadline like HeaderTimeout. Zero means 30 s.
	BodyTimeout time.Duration
	// Version is reported by /healthz and the status endpoint.
	Version string
	// Cmdline is what GET /debug/pprof/cmdline shows (NUL-separated, as
	// Go's handler does): the process's arguments with secrets redacted.
	// Nil shows the program name alone, never os.Args, which may hold the
	// admin key.
	Cmdline []string
	// Status fills GET /admin/v1/status. Nil means a status built from the
	// process and the core's counters. Blank Version and HTTPAddr fields are
	// filled in by the server either way.
	Status func() Status
	// Shutdown is called by POST /admin/v1/shutdown after the 202 reply has
	// been written (chatd stop uses this on every OS). Nil answers 503.
	Shutdown func()
	// Backup writes a consistent copy of the data file to w for GET
	// /admin/v1/backup, calling sized with its length before the first
	// byte (storage.Bolt.BackupSized). Nil answers 503.
	Backup func(w io.Writer, sized func(int64)) (int64, error)
	// Metrics writes the families GET /metrics shows beyond the core's,
	// the HTTP API's, the Go runtime's and the process's: the process
	// wiring adds the WebSocket listener's here. Nil adds none.
	Metrics func(w *metrics.Writer)
	// SubscriberBuffer bounds the events waiting for one live stream
	// (GET /admin/v1/subscribe). Zero means 4096. Past it the stream's
	// events are dropped and counted, never waited for.
	SubscriberBuffer int
	// MaxSubscribers caps concurrent live streams. Zero means 64. Streams
	// run on connections taken over from the HTTP server, so they do not
	// count against MaxConns.
	MaxSubscribers int
	// StreamHeartbeat is the interval of a live stream's heartbeat line
	// (and of a user event stream's heartbeat comment). Zero means 15 s.
	StreamHeartbeat time.Duration
	// MaxPolls caps the waiting long-polls and user event streams
	// together (poll.go). They run on connections taken over from the
	// HTTP server, so they do not count against MaxConns and cannot
	// starve the API. Zero means 5000; over it, 503 unavailable.
	MaxPolls int
	// MaxPollsPerUser caps one user's waiting long-polls and event
	// streams, so that one token cannot take MaxPolls. Zero means 8; over
	// it, 429 rate_limited.
	MaxPollsPerUser int
	// PollTimeout is how long a long-poll waits for an event when the
	// request names no timeout. Zero means 25 s.
	PollTimeout time.Duration
	// CORSOrigins are the browser origins (scheme://host[:port], or "*")
	// allowed to call the user endpoints (/v1/…) from a page; their
	// preflights are answered. Empty allows none.
	CORSOrigins []string
	// UploadDir is where uploads are stored (content-addressed, see
	// upload.go): chatd sets <data_dir>/uploads. Empty disables uploads
	// (503).
	UploadDir string
	// MaxImage, MaxVoice, MaxVideo and MaxFile cap one upload of each
	// type in bytes. Zero means 10 MiB, 2 MiB, 50 MiB and 50 MiB.
	MaxImage, MaxVoice, MaxVideo, MaxFile int64
	// UploadQuota caps the bytes of uploads one app stores. Zero means
	// 10 GiB; negative means no cap.
	UploadQuota int64
	// MaxUploads caps the uploads in progress. Zero means 32; over it,
	// 503 before the body is read.
	MaxUploads int
	// UploadTimeout bounds the read of an upload's body (a deadline from
	// the start of the upload). Zero means 10 minutes.
	UploadTimeout time.Duration
	// FileURLTTL is how long a signed file URL works. Zero means 1 hour.
	FileURLTTL time.Duration
	// UploadGrace is how long an upload may stay unsent (or unreferenced)
	// before garbage collection removes it. Zero means 24 hours.
	UploadGrace time.Duration
	// FileGCInterval is how often uploads are garbage-collected. Zero
	// means 1 hour.
	FileGCInterval time.Duration
	// Now is the clock of signed file URLs. Nil means time.Now.
	Now func() time.Time
	// Demo serves the demo pages under /demo/ and their backend, which
	// answers loopback callers only (internal/demo, docs/demo.md). Off:
	// /demo/ answers 404 like any unknown path.
	Demo bool
	// WSAddr reports the WebSocket listener's address, for the URLs the
	// demo pages connect to. Nil means ":22886".
	WSAddr func() string
}

// Status is the answer of GET /admin/v1/status.
type Status struct {
	Version       string `json:"version"`
	PID           int    `json:"pid"`
	StartedAt     int64  `json:"started_at"` // unix seconds
	UptimeSeconds int64  `json:"uptime_seconds"`
	WSAddr        string `json:"ws_addr"`
	HTTPAddr      string `json:"http_addr"`
	DataDir       string `json:"data_dir"`
	Conns         int    `json:"conns"`
	UsersOnline   int    `json:"users_online"`
	Goroutines    int    `json:"goroutines"`
	HeapBytes     uint64 `json:"heap_bytes"`
	RSSBytes      uint64 `json:"rss_bytes"` // resident set size of the process
	// PresenceEvents counts the presence events queued to devices since
	// the start (chat presence.go).
	PresenceEvents uint64 `json:"presence_events"`
	// Cluster is set on a node of a cluster (clusterstatus.go).
	Cluster *ClusterStatus `json:"cluster,omitempty"`
}

// Server is the HTTP listener. Create it with New and start it with Run.
type Server struct {
	cfg      Config
	core     *chat.Core
	log      zerolog.Logger
	adminKey []byte
	// unknownAppKey is a random per-process key that requests naming an
	// unknown app are verified against, so that they fail exactly like a
	// bad signature (auth.go).
	unknownAppKey []byte
	window        int64 // SignatureWindow in whole seconds, >= 1
	windowMsg     string
	ahead         int64 // SignatureAhead in whole seconds, >= 1
	aheadMsg      string
	nonces        *nonceCache
	startedAt     time.Time
	srv           *fasthttp.Server
	handler       fasthttp.RequestHandler

	// reqCtx is the context core calls run under: it outlives the Run
	// context by the shutdown grace so that in-flight requests finish, and
	// is cancelled when Serve returns. Set once by New.
	reqCtx    context.Context
	reqCancel context.CancelFunc

	ready    chan struct{} // closed by Serve once the listener is bound
	running  atomic.Bool   // set by Serve; a Server serves once
	addrMu   sync.Mutex    // guards addr
	addr     string
	shutOnce sync.Once // guards the single call of cfg.Shutdown
	// shutConn is the connection that carried POST /admin/v1/shutdown; its
	// close (reply written) triggers cfg.Shutdown. Set from a handler,
	// read from fasthttp's ConnState callback.
	shutConn atomic.Pointer[net.Conn]

	admission *admission   // connection slots (admit.go)
	streams   streamSet    // live event streams (subscribe.go)
	polls     pollSet      // waiting long-polls and user event streams (poll.go)
	uploads   atomic.Int64 // uploads in progress (upload.go)
	// uploadsDone counts the uploads stored (metrics).
	uploadsDone atomic.Uint64
	fileKey     []byte        // signs file URLs (files.go)
	blobs       blobState     // uploads in the cluster's store (blobs.go)
	demo        *demo.Backend // nil: the demo is off (demo.go)
	requests    httpCounters  // answered requests by status class (metrics.go)
	fwd         fwdCounters   // calls forwarded to and from other nodes (forward.go)
}

// New builds a Server; it does not listen until Run.
func New(cfg Config, core *chat.Core, log zerolog.Logger) (*Server, error) {
	if cfg.AdminKey == "" {
		return nil, errors.New("httpapi: Config.AdminKey is required")
	}
	if core == nil {
		return nil, errors.New("httpapi: nil core")
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.SignatureWindow <= 0 {
		cfg.SignatureWindow = DefaultSignatureWindow
	}
	if cfg.SignatureAhead <= 0 {
		cfg.SignatureAhead = min(DefaultSignatureAhead, cfg.SignatureWindow)
	}
	if cfg.MaxNonces <= 0 {
		cfg.MaxNonces = DefaultMaxNonces
	}
	if cfg.MaxNoncesPerKey <= 0 {
		cfg.MaxNoncesPerKey = max(1, cfg.MaxNonces/2)
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxConnsPerIP <= 0 {
		cfg.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if cfg.ReservedConns <= 0 {
		cfg.ReservedConns = DefaultReservedConns
	}
	if cfg.ReservedPeers == nil {
		cfg.ReservedPeers = defaultReservedPeers
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = DefaultHeaderTimeout
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	cfg.fillStream()
	if cfg.MaxPolls <= 0 {
		cfg.MaxPolls = DefaultMaxPolls
	}
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = DefaultPollTimeout
	}
	if cfg.MaxPollsPerUser <= 0 {
		cfg.MaxPollsPerUser = DefaultPollsPerUser
	}
	cfg.fillUploads()
	window := int64(cfg.SignatureWindow / time.Second)
	if window < 1 {
		window = 1
	}
	ahead := int64(cfg.SignatureAhead / time.Second)
	if ahead < 1 {
		ahead = 1
	}
	unknownAppKey := make([]byte, 32)
	if _, err := rand.Read(unknownAppKey); err != nil {
		return nil, fmt.Errorf("httpapi: random key: %w", err)
	}
	s := &Server{
		unknownAppKey: unknownAppKey,
		cfg:           cfg,
		core:          core,
		log:           log,
		adminKey:      []byte(cfg.AdminKey),
		window:        window,
		windowMsg:     "timestamp outside the " + windowText(time.Duration(window)*time.Second) + " window",
		ahead:         ahead,
		aheadMsg:      "timestamp more than " + windowText(time.Duration(ahead)*time.Second) + " ahead of the server clock",
		nonces:        newNonceCache(window, cfg.MaxNonces, cfg.MaxNoncesPerKey),
		startedAt:     time.Now(),
		ready:         make(chan struct{}),
		fileKey:       fileURLKey(cfg.AdminKey),
		blobs:         blobState{minAge: cfg.UploadTimeout + time.Minute},
	}
	if cfg.Demo {
		s.demo = &demo.Backend{Core: core, WSAddr: cfg.WSAddr}
	}
	s.admission = &admission{
		maxGeneral:  cfg.MaxConns,
		maxReserved: cfg.ReservedConns,
		maxPerIP:    cfg.MaxConnsPerIP,
		exempt:      s.trusted,
		reservedFor: cfg.ReservedPeers,
		perIP:       make(map[netip.Addr]int),
	}
	s.reqCtx, s.reqCancel = context.WithCancel(context.Background())
	s.handler = s.serveHTTP
	s.srv = &fasthttp.Server{
		Handler:      s.handler,
		ErrorHandler: s.serveError,
		ConnState:    s.connState,
		Name:         "chatd",
		// The admission listener (admit.go) is what caps connections;
		// fasthttp's own cap sits above it with room for the moments a
		// closed connection's worker has not returned to the pool yet.
		Concurrency:        2 * (cfg.MaxConns + cfg.ReservedConns),
		MaxRequestBodySize: cfg.MaxBody,
		// Bodies are streams: an upload is copied to disk as it arrives
		// (upload.go) and every other body is read by serveHTTP up to
		// MaxBody. fasthttp's own multipart parsing would read a whole
		// form (to temporary files) before the handler could refuse it.
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		// Deadlines set once (see admit.go): the header's at the start,
		// the body's when the header is in.
		ReadTimeout:          cfg.HeaderTimeout,
		HeaderReceived:       s.headerReceived,
		WriteTimeout:         30 * time.Second,
		IdleTimeout:          60 * time.Second,
		CloseOnShutdown:      true,
		NoDefaultContentType: true,
		Logger:               fasthttpLogger{log: log},
	}
	core.HandleForward(fwdTopic, s.serveForwarded) // forward.go: calls other nodes send this one
	return s, nil
}

// Handler returns the request handler, for tests that serve it themselves.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handler }

// Ready is closed once the listener is bound.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the bound host:port, valid after Ready (Config.Addr before).
func (s *Server) Addr() string {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	if s.addr == "" {
		return s.cfg.Addr
	}
	return s.addr
}

// Run listens on Config.Addr and serves until ctx ends, then shuts down
// gracefully: the listener closes at once and in-flight requests get up to
// 5 seconds to finish.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("httpapi: listen %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends (see Run). It takes ownership of ln. A
// Server serves once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if !s.running.CompareAndSwap(false, true) {
		ln.Close()
		return errors.New("httpapi: server already started")
	}
	s.addrMu.Lock()
	s.addr = ln.Addr().String()
	s.addrMu.Unlock()
	close(s.ready)
	s.log.Info().Str("addr", s.Addr()).Msg("http api listening")

	ln = &admitListener{Listener: ln, a: s.admission, log: s.log}
	gcCtx, stopGC := context.WithCancel(ctx)
	defer stopGC()
	if s.cfg.UploadDir != "" {
		go s.runFileGC(gcCtx)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(ln) }()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		errc = nil
	}
	// Live streams run on hijacked connections, which fasthttp's shutdown
	// neither waits for nor closes: tell them to end now, wait below.
	s.streams.stop()
	s.polls.stop()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	err := s.srv.ShutdownWithContext(sctx)
	cancel()
	// If ctx ended before fasthttp's Serve registered ln, the shutdown above
	// did not see it: closing it here makes that Serve return at once.
	ln.Close()
	s.streams.wait()
	s.polls.wait()
	s.reqCancel()
	if errc != nil {
		serveErr = <-errc
	}
	if err != nil {
		s.log.Warn().Err(err).Msg("http api: shutdown did not finish in time")
	}
	if serveErr != nil {
		return fmt.Errorf("httpapi: serve: %w", serveErr)
	}
	return nil
}

// headerReceived is fasthttp's HeaderReceived hook: once a request's
// header is in, its body gets BodyTimeout from now (a deadline, set once).
func (s *Server) headerReceived(*fasthttp.RequestHeader) fasthttp.RequestConfig {
	return fasthttp.RequestConfig{ReadTimeout: s.cfg.BodyTimeout}
}

// connState watches for the close of the connection that asked for a
// shutdown: by then its 202 reply is written.
func (s *Server) connState(c net.Conn, st fasthttp.ConnState) {
	if st != fasthttp.StateClosed && st != fasthttp.StateHijacked {
		return
	}
	if ac, ok := c.(*admitConn); ok && st == fasthttp.StateHijacked {
		ac.release() // live streams have their own cap
	}
	if p := s.shutConn.Load(); p != nil && *p == c {
		s.triggerShutdown()
	}
}

// triggerShutdown calls cfg.Shutdown once, on its own goroutine (it may
// wait for this server to stop).
func (s *Server) triggerShutdown() {
	s.shutOnce.Do(func() {
		s.log.Info().Msg("http api: shutdown requested by the admin API")
		go s.cfg.Shutdown()
	})
}

// status builds the status answer.
func (s *Server) status() Status {
	var st Status
	if s.cfg.Status != nil {
		st = s.cfg.Status()
	} else {
		cs := s.core.Stats()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		st = Status{
			PID:           os.Getpid(),
			StartedAt:     s.startedAt.Unix(),
			UptimeSeconds: int64(time.Since(s.startedAt) / time.Second),
			Conns:         cs.Clients,
			UsersOnline:   cs.UsersOnline,
			Goroutines:    runtime.NumGoroutine(),
			HeapBytes:     ms.HeapAlloc,
			RSSBytes:      metrics.RSS(),
		}
	}
	if st.Version == "" {
		st.Version = s.cfg.Version
	}
	if st.HTTPAddr == "" {
		st.HTTPAddr = s.Addr()
	}
	st.PresenceEvents = s.core.Stats().Presence
	return st
}

// windowText renders a duration the way error messages say it: "5 minute",
// "90 second", "1 hour".
func windowText(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return itoa(int64(d/time.Hour)) + " hour"
	case d%time.Minute == 0:
		return itoa(int64(d/time.Minute)) + " minute"
	}
	return itoa(int64(d/time.Second)) + " second"
}

// fasthttpLogger routes fasthttp's own messages to zerolog: per-connection
// serving errors (malformed or oversized requests, already answered to the
// client) at debug, so clients cannot flood the log; the rest (accept
// failures, the connection cap reached, at most once a minute) at warn.
type fasthttpLogger struct{ log zerolog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	var ev *zerolog.Event
	if strings.HasPrefix(format, "error when serving connection") {
		ev = l.log.Debug()
	} else {
		ev = l.log.Warn()
	}
	if ev.Enabled() {
		ev.Msgf("fasthttp: "+format, args...)
	}
}
