package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"chatd/chat"
	"chatd/internal/webhook"
)

func TestSendHeadersAndStatus(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		if r.Method != http.MethodPost {
			t.Errorf("method %s", r.Method)
		}
		w.WriteHeader(202)
	}))
	defer srv.Close()
	s := webhook.New(webhook.Config{AllowLoopback: true, UserAgent: "chatd-webhook/test"})
	code, err := s.Send(context.Background(), srv.URL, chat.WebhookHeaders{DeliveryID: "1.wh_a", Event: "user.online", Timestamp: 42, Signature: "v1=ab"}, []byte(`{}`))
	if err != nil || code != 202 {
		t.Fatalf("Send = %d, %v", code, err)
	}
	for k, v := range map[string]string{"X-Chatd-Delivery": "1.wh_a", "X-Chatd-Event": "user.online", "X-Chatd-Timestamp": "42",
		"X-Chatd-Signature": "v1=ab", "Content-Type": "application/json", "User-Agent": "chatd-webhook/test"} {
		if got.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, got.Get(k), v)
		}
	}
}

// A redirect to another host is refused: the target's receiver is never
// called. (127.0.0.1 and localhost are two hosts for this rule.)
func TestRedirectToAnotherHostRefused(t *testing.T) {
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer target.Close()
	other := strings.Replace(target.URL, "127.0.0.1", "localhost", 1)
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other+"/x", http.StatusTemporaryRedirect)
	}))
	defer redir.Close()
	s := webhook.New(webhook.Config{AllowLoopback: true})
	_, err := s.Send(context.Background(), redir.URL, chat.WebhookHeaders{}, []byte(`{}`))
	if err == nil || !strings.Contains(err.Error(), "another host") {
		t.Fatalf("Send through a cross-host redirect: %v", err)
	}
	if hits.Load() != 0 {
		t.Fatal("the other host was called")
	}
}

func TestAllowedHostsAndAddressRules(t *testing.T) {
	s := webhook.New(webhook.Config{AllowedHosts: []string{"hooks.example.com", ".example.org"}})
	for url, ok := range map[string]bool{
		"https://hooks.example.com/x": true,
		"https://a.example.org/x":     true,
		"https://example.org/x":       false,
		"https://evil.com/x":          false,
	} {
		if err := s.CheckURL(url); (err == nil) != ok {
			t.Errorf("CheckURL(%s) = %v, want ok=%v", url, err, ok)
		}
	}
	p := webhook.New(webhook.Config{AllowPrivate: true})
	if err := p.CheckURL("http://10.1.2.3/"); err != nil {
		t.Errorf("private allowed by the setting: %v", err)
	}
	if err := p.CheckURL("http://127.0.0.1/"); err == nil {
		t.Error("loopback allowed by webhook_private")
	}
	if err := p.CheckURL("http://0.0.0.0/"); err == nil {
		t.Error("unspecified address allowed")
	}
}
