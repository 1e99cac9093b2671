package httpapi

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatd/chat"
	"chatd/chat/memstore"
	"chatd/httpapi/apiclient"
)

// TestRealListener runs the server on 127.0.0.1:0 and drives it over TCP,
// ending with the shutdown endpoint.
func TestRealListener(t *testing.T) {
	core, err := chat.New(chat.Config{}, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	coreCtx, coreCancel := context.WithCancel(context.Background())
	defer coreCancel()
	go core.Run(coreCtx)

	shutdownAt := make(chan time.Time, 1)
	srv, err := New(Config{
		Addr:     "127.0.0.1:0",
		AdminKey: testAdminKey,
		MaxBody:  1024,
		Version:  "v-real",
		Shutdown: func() {
			shutdownAt <- time.Now()
			cancel()
		},
	}, core, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-runErr:
		t.Fatalf("Run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}
	if strings.HasSuffix(srv.Addr(), ":0") || !strings.HasPrefix(srv.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr %q, want the bound port", srv.Addr())
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	base := "http://" + srv.Addr()
	bg := context.Background()

	admin := &apiclient.Client{BaseURL: base, AdminKey: testAdminKey, HTTP: hc}
	hl, err := admin.Health(bg)
	if err != nil || hl.Version != "v-real" {
		t.Fatalf("health %+v %v", hl, err)
	}
	app, err := admin.CreateApp(bg, "shop", "Shop")
	if err != nil {
		t.Fatal(err)
	}
	st, err := admin.Status(bg)
	if err != nil {
		t.Fatal(err)
	}
	if st.HTTPAddr != srv.Addr() {
		t.Fatalf("status http_addr %q, want %q", st.HTTPAddr, srv.Addr())
	}
	c := &apiclient.Client{BaseURL: base, App: app.ID, Secret: app.Secret, HTTP: hc}
	if _, err := c.PushUser(bg, apiclient.PushUserInput{UID: "alice"}); err != nil {
		t.Fatal(err)
	}
	// fasthttp's own body limit answers in the JSON envelope too.
	_, err = c.PushUser(bg, apiclient.PushUserInput{UID: "alice", Nickname: strings.Repeat("n", 2000)})
	if ae := apiErr(t, err, 413, "too_large"); ae.Message != "request body over the 1024 byte limit" {
		t.Fatalf("413 message %q", ae.Message)
	}

	if err := admin.Shutdown(bg); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	replied := time.Now()
	select {
	case at := <-shutdownAt:
		// Triggered by the connection closing after the reply, not by the
		// 2 s fallback timer.
		if d := at.Sub(replied); d > time.Second {
			t.Fatalf("Shutdown called %v after the reply", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Config.Shutdown not called")
	}
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if _, err := admin.Health(bg); err == nil {
		t.Fatal("server still answering after Run returned")
	}
	// Serve refuses a second start.
	if err := srv.Run(context.Background()); err == nil {
		t.Fatal("second Run: no error")
	}
}

func TestShutdownUnavailableWithoutHook(t *testing.T) {
	h := newHarness(t, nil)
	err := h.admin.Shutdown(context.Background())
	apiErr(t, err, 503, "unavailable")
}

func TestListenError(t *testing.T) {
	core, err := chat.New(chat.Config{}, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Addr: "127.0.0.1:99999", AdminKey: "k"}, core, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("Run on a bad address: %v", err)
	}
}

func TestFasthttpLogLevels(t *testing.T) {
	tests := []struct {
		name   string
		format string
		level  string
	}{
		{name: "client-caused serving error", format: "error when serving connection %q<->%q: %v", level: `"level":"debug"`},
		{name: "connection cap reached", format: "The incoming connection cannot be served, because %d concurrent connections are served.", level: `"level":"warn"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf syncBuffer
			fasthttpLogger{log: zerolog.New(&buf)}.Printf(tt.format, 1, 2, 3)
			if !strings.Contains(buf.String(), tt.level) || !strings.Contains(buf.String(), "fasthttp: ") {
				t.Fatalf("logged %q, want level %s", buf.String(), tt.level)
			}
		})
	}
}

func TestMaxConns(t *testing.T) {
	core, err := chat.New(chat.Config{}, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(Config{Addr: "127.0.0.1:0", AdminKey: "k", MaxConns: 2, ReservedConns: 1}, core, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	<-srv.Ready()
	// Three silent connections hold both general slots and the one
	// reserved for loopback.
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c) // the server answers and closes without a request
	if !strings.HasPrefix(string(b), "HTTP/1.1 503") || !strings.Contains(string(b), `"code":"unavailable"`) {
		t.Fatalf("fourth connection got %q, want a 503 unavailable", b)
	}
}
