package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSignVector pins Sign to a value computed independently:
//
//	printf 'POST\n/api/v1/messages\n1766000000\nn0nce-123\n{"from":"u1","to":"u2","type":"text","content":{"text":"hi"}}' |
//	  openssl dgst -sha256 -hmac s3cr3t
func TestSignVector(t *testing.T) {
	tests := []struct {
		name                   string
		key, method, path, ts  string
		nonce, body, signature string
	}{
		{
			name: "docs example", key: "s3cr3t", method: "POST", path: "/api/v1/messages", ts: "1766000000",
			nonce: "n0nce-123", body: `{"from":"u1","to":"u2","type":"text","content":{"text":"hi"}}`,
			signature: "6469369fe4df9b9409c7a66d39eb2ecb12667da5f039c01cb4f3516f65089375",
		},
		{
			// printf 'GET\n/admin/v1/status\n1766000000\nabcdefgh\n' | openssl dgst -sha256 -hmac adminkey
			name: "empty body", key: "adminkey", method: "GET", path: "/admin/v1/status", ts: "1766000000",
			nonce: "abcdefgh", body: "",
			signature: "68d7b185e5f6426047ca7643a779dc339998cd7da17509c42bf099c6fca760c8",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Sign(tt.key, tt.method, tt.path, tt.ts, tt.nonce, []byte(tt.body))
			if got != tt.signature {
				t.Fatalf("Sign = %s, want %s", got, tt.signature)
			}
		})
	}
}

var nonceRE = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)

func TestNewNonce(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		n := NewNonce()
		if !nonceRE.MatchString(n) {
			t.Fatalf("nonce %q does not match %s", n, nonceRE)
		}
		if seen[n] {
			t.Fatalf("nonce %q repeated", n)
		}
		seen[n] = true
	}
}

// recorded is one request as the fake server saw it.
type recorded struct {
	method, uri string
	header      http.Header
	body        []byte
}

// fakeServer answers every request with status and body and records it.
type fakeServer struct {
	mu     sync.Mutex // guards reqs, status, body
	reqs   []recorded
	status int
	body   string
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, recorded{method: r.Method, uri: r.RequestURI, header: r.Header.Clone(), body: b})
	status, body := f.status, f.body
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func (f *fakeServer) last() recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1]
}

func (f *fakeServer) answer(status int, body string) {
	f.mu.Lock()
	f.status, f.body = status, body
	f.mu.Unlock()
}

func TestDoSigning(t *testing.T) {
	fs := &fakeServer{status: 200, body: `{"ok":true,"data":{}}`}
	ts := httptest.NewServer(fs)
	defer ts.Close()
	now := time.Unix(1766000000, 0)
	c := &Client{BaseURL: ts.URL + "/", App: "shop", Secret: "app-secret", AdminKey: "admin-secret", Now: func() time.Time { return now }}
	ctx := context.Background()
	tests := []struct {
		name   string
		call   func() error
		method string
		uri    string
		key    string // "" means unsigned
		app    string
		body   string
	}{
		{name: "admin", call: func() error { _, err := c.CreateApp(ctx, "x", "X"); return err },
			method: "POST", uri: "/admin/v1/apps", key: "admin-secret", body: `{"id":"x","name":"X"}`},
		{name: "admin no body", call: func() error { _, err := c.Status(ctx); return err },
			method: "GET", uri: "/admin/v1/status", key: "admin-secret"},
		{name: "app with escaped path", call: func() error { _, err := c.User(ctx, "a b/c?"); return err },
			method: "GET", uri: "/api/v1/users/a%20b%2Fc%3F", key: "app-secret", app: "shop"},
		{name: "app with query", call: func() error { _, err := c.History(ctx, 42, 7, 20); return err },
			method: "GET", uri: "/api/v1/sessions/42/messages?before=7&limit=20", key: "app-secret", app: "shop"},
		{name: "app token ttl in seconds", call: func() error { _, err := c.IssueToken(ctx, "u1", 90*time.Minute); return err },
			method: "POST", uri: "/api/v1/users/u1/tokens", key: "app-secret", app: "shop", body: `{"ttl":5400}`},
		{name: "health unsigned", call: func() error { _, err := c.Health(ctx); return err },
			method: "GET", uri: "/healthz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err != nil {
				t.Fatal(err)
			}
			r := fs.last()
			if r.method != tt.method || r.uri != tt.uri || string(r.body) != tt.body {
				t.Fatalf("sent %s %s %q, want %s %s %q", r.method, r.uri, r.body, tt.method, tt.uri, tt.body)
			}
			if got := r.header.Get(HeaderApp); got != tt.app {
				t.Fatalf("X-Chatd-App %q, want %q", got, tt.app)
			}
			sig := r.header.Get(HeaderSignature)
			if tt.key == "" {
				if sig != "" {
					t.Fatal("unsigned request carries a signature")
				}
				return
			}
			tsh, nonce := r.header.Get(HeaderTimestamp), r.header.Get(HeaderNonce)
			if tsh != "1766000000" || !nonceRE.MatchString(nonce) {
				t.Fatalf("timestamp %q nonce %q", tsh, nonce)
			}
			if want := Sign(tt.key, tt.method, tt.uri, tsh, nonce, r.body); sig != want {
				t.Fatalf("signature %s, want %s", sig, want)
			}
		})
	}
}

func TestDoErrors(t *testing.T) {
	fs := &fakeServer{}
	ts := httptest.NewServer(fs)
	defer ts.Close()
	c := &Client{BaseURL: ts.URL, App: "shop", Secret: "s", AdminKey: "a"}
	ctx := context.Background()
	tests := []struct {
		name   string
		status int
		body   string
		want   APIError
	}{
		{name: "error envelope", status: 401, body: `{"ok":false,"error":{"code":"unauthorized","message":"bad signature"}}`,
			want: APIError{Status: 401, Code: "unauthorized", Message: "bad signature"}},
		{name: "not JSON", status: 503, body: "The connection cannot be served",
			want: APIError{Status: 503, Message: "non-JSON answer: The connection cannot be served"}},
		{name: "neither data nor error", status: 200, body: `{"ok":false}`,
			want: APIError{Status: 200, Message: `answer has neither data nor error: {"ok":false}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs.answer(tt.status, tt.body)
			_, err := c.PushUser(ctx, PushUserInput{UID: "u"})
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err %v (%T), want *APIError", err, err)
			}
			if *ae != tt.want {
				t.Fatalf("got %+v, want %+v", *ae, tt.want)
			}
			if !strings.Contains(ae.Error(), strconv.Itoa(tt.status)) {
				t.Fatalf("Error() %q lacks the status", ae.Error())
			}
		})
	}
	t.Run("data decoded into out", func(t *testing.T) {
		fs.answer(200, `{"ok":true,"data":{"user":{"uid":"u","nickname":"N"},"token":"t","expires_at":5}}`)
		r, err := c.PushUser(ctx, PushUserInput{UID: "u", IssueToken: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.User.UID != "u" || r.User.Nickname != "N" || r.Token != "t" || r.ExpiresAt != 5 {
			t.Fatalf("decoded %+v", r)
		}
	})
	t.Run("missing credentials", func(t *testing.T) {
		if _, err := (&Client{BaseURL: ts.URL}).Apps(ctx); err == nil || !strings.Contains(err.Error(), "AdminKey") {
			t.Fatalf("admin call without AdminKey: %v", err)
		}
		if _, err := (&Client{BaseURL: ts.URL, App: "x"}).User(ctx, "u"); err == nil || !strings.Contains(err.Error(), "Secret") {
			t.Fatalf("app call without Secret: %v", err)
		}
	})
	t.Run("raw body sent as is", func(t *testing.T) {
		fs.answer(200, `{"ok":true,"data":null}`)
		if err := c.Do(ctx, "POST", "/api/v1/messages", json.RawMessage(`{"raw":1}`), nil); err != nil {
			t.Fatal(err)
		}
		if got := string(fs.last().body); got != `{"raw":1}` {
			t.Fatalf("body %q", got)
		}
	})
}

func TestClientDo(t *testing.T) {
	fs := &fakeServer{}
	ts := httptest.NewServer(fs)
	defer ts.Close()
	c := &Client{BaseURL: ts.URL, App: "shop"}
	ctx := context.Background()

	fs.answer(200, `{"reply_to":"1","ok":false,"error":{"code":"forbidden","message":"no"}}`)
	reply, err := c.ClientDo(ctx, "tok-1", map[string]string{"id": "1", "action": "ping"})
	if err != nil {
		t.Fatal(err)
	}
	if string(reply) != `{"reply_to":"1","ok":false,"error":{"code":"forbidden","message":"no"}}` {
		t.Fatalf("reply %s", reply)
	}
	r := fs.last()
	if r.uri != "/v1/client" || r.header.Get("Authorization") != "Bearer tok-1" || r.header.Get(HeaderApp) != "shop" ||
		r.header.Get(HeaderSignature) != "" || string(r.body) != `{"action":"ping","id":"1"}` {
		t.Fatalf("request %+v", r)
	}

	fs.answer(401, `{"ok":false,"error":{"code":"unauthorized","message":"invalid or revoked token"}}`)
	_, err = c.ClientDo(ctx, "tok-1", map[string]string{"id": "1", "action": "ping"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 401 || ae.Code != "unauthorized" {
		t.Fatalf("err %v", err)
	}
}
