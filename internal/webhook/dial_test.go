package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// The dial-time check, alone: the client refuses a loopback address it is
// about to connect to even when nothing checked the URL first (a name
// that resolved, or came to resolve, to 127.0.0.1 reaches exactly this).
func TestDialRefusesLoopbackAddress(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	s := New(Config{})
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL, nil)
	_, err := s.client.Do(req) // past CheckURL, straight to the dialer
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("dial to %s: %v, want refused as loopback", srv.URL, err)
	}
	if hits.Load() != 0 {
		t.Fatal("the loopback receiver was called")
	}
	// With the setting, the same dial goes through.
	ok := New(Config{AllowLoopback: true})
	req, _ = http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL, nil)
	resp, err := ok.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if hits.Load() != 1 {
		t.Fatalf("%d hits with webhook_loopback set", hits.Load())
	}
}
