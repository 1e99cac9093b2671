// Package teststack runs a whole chatd in the test's process, wired as
// cmd/chatd wires it — store → core → HTTP API → reactor — on 127.0.0.1
// port 0. Only tests import it (like net/http/httptest).
package teststack

import (
	"context"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatd/chat"
	"chatd/httpapi"
	"chatd/httpapi/apiclient"
	"chatd/reactor"
	"chatd/storage"
	"chatd/wsproto"
)

// AdminKey is the server admin key of every Server.
const AdminKey = "teststack-admin-key-0123456789abcdef"

// Options are the few settings tests vary. Zero values are chatd's defaults.
type Options struct {
	MaxConns     int
	MaxMessage   int
	LoginTimeout time.Duration
	Compression  bool
	// SubscriberBuffer is the live-stream buffer per subscriber, in events.
	SubscriberBuffer int
	Log              zerolog.Logger // zero value: discard
	// MaxOutbound is the reactor's outbound limit per connection.
	MaxOutbound int
	// Core is the core's configuration; LoginTimeout above overrides its
	// field of that name when set. Its MaxReply, when zero, is half of
	// MaxOutbound as cmd/chatd wires it.
	Core chat.Config
	// Now replaces the core's clock (nil: time.Now).
	Now func() time.Time
	// Limits are the core's per-user limits (zero: none).
	Limits chat.Limits
	// CORSOrigins are the browser origins allowed on the user endpoints.
	CORSOrigins []string
	// Demo serves the demo pages under /demo/ (docs/demo.md).
	Demo bool
}

// Server is one running chatd. Stop (also run by t.Cleanup) stops it as
// chatd does (drain the core, close the transports, stop the core, close
// the store); it is idempotent.
type Server struct {
	Core     *chat.Core
	WS       *reactor.Server
	WSAddr   string
	HTTPAddr string
	Admin    *apiclient.Client // signed with AdminKey

	stopOnce sync.Once
	stopFn   func()
}

// Start runs a chatd on the data folder dir (chat.db inside it).
func Start(t testing.TB, dir string, o Options) *Server {
	t.Helper()
	st, err := storage.Open(filepath.Join(dir, "chat.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cc := o.Core
	if o.LoginTimeout != 0 {
		cc.LoginTimeout = o.LoginTimeout
	}
	if o.Now != nil {
		cc.Now = o.Now
	}
	if o.Limits != (chat.Limits{}) {
		cc.Limits = o.Limits
	}
	if cc.MaxReply == 0 && o.MaxOutbound > 0 {
		cc.MaxReply = o.MaxOutbound / 2
	}
	core, err := chat.New(cc, st)
	if err != nil {
		t.Fatal(err)
	}
	var rs *reactor.Server
	hs, err := httpapi.New(httpapi.Config{Addr: "127.0.0.1:0", AdminKey: AdminKey, SubscriberBuffer: o.SubscriberBuffer,
		UploadDir: filepath.Join(dir, "uploads"), CORSOrigins: o.CORSOrigins,
		Demo: o.Demo, WSAddr: func() string { return rs.Addr() }}, core, o.Log)
	if err != nil {
		t.Fatal(err)
	}
	rs, err = reactor.New(reactor.Config{Addr: "127.0.0.1:0", Loops: 2, MaxConns: o.MaxConns, MaxMessage: o.MaxMessage, MaxOutbound: o.MaxOutbound,
		Handshake: wsproto.HandshakeConfig{Compression: o.Compression}}, core, o.Log)
	if err != nil {
		t.Fatal(err)
	}
	coreCtx, stopCore := context.WithCancel(context.Background())
	netCtx, stopNet := context.WithCancel(context.Background())
	coreDone, httpDone, wsDone := make(chan error, 1), make(chan error, 1), make(chan error, 1)
	go func() { coreDone <- core.Run(coreCtx) }()
	go func() { httpDone <- hs.Run(netCtx) }()
	go func() { wsDone <- rs.Run(netCtx) }()
	for _, ready := range []<-chan struct{}{hs.Ready(), rs.Ready()} {
		select {
		case <-ready:
		case err := <-wsDone:
			t.Fatalf("reactor: %v", err)
		case err := <-httpDone:
			t.Fatalf("httpapi: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("chatd not ready in 10s")
		}
	}
	s := &Server{Core: core, WS: rs, WSAddr: rs.Addr(), HTTPAddr: hs.Addr()}
	s.Admin = &apiclient.Client{BaseURL: "http://" + s.HTTPAddr, AdminKey: AdminKey, HTTP: &http.Client{Timeout: 10 * time.Second}}
	s.stopFn = func() {
		// chatd's order: drain the core (every queued write answered),
		// then close the transports, then stop the core.
		dctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if err := core.Drain(dctx); err != nil {
			t.Errorf("core Drain: %v", err)
		}
		cancel()
		stopNet()
		for name, ch := range map[string]chan error{"reactor": wsDone, "httpapi": httpDone} {
			if err := <-ch; err != nil {
				t.Errorf("%s Run: %v", name, err)
			}
		}
		stopCore()
		if err := <-coreDone; err != nil {
			t.Errorf("core Run: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("store close: %v", err)
		}
	}
	t.Cleanup(s.Stop)
	return s
}

// Stop stops the server; every acknowledged message is on disk after it.
func (s *Server) Stop() { s.stopOnce.Do(s.stopFn) }

// AppClient returns a client signed with an app's secret.
func (s *Server) AppClient(id, secret string) *apiclient.Client {
	return &apiclient.Client{BaseURL: "http://" + s.HTTPAddr, App: id, Secret: secret, HTTP: &http.Client{Timeout: 10 * time.Second}}
}
