//go:build linux

package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"chatd/httpapi/apiclient"
)

// hookRecorder is a webhook receiver on 127.0.0.1: it hangs while hold is
// set (a dead endpoint that accepts and never answers), else answers 200
// and records the delivery.
type hookRecorder struct {
	mu        sync.Mutex
	hold      chan struct{}
	delivered map[string]json.RawMessage // delivery id → body, answered 200
	attempts  int
}

func (r *hookRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.attempts++
	hold := r.hold
	r.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-req.Context().Done():
			return
		}
	}
	r.mu.Lock()
	r.delivered[req.Header.Get("X-Chatd-Delivery")] = body
	r.mu.Unlock()
	w.WriteHeader(200)
}

func (r *hookRecorder) count() (delivered, attempts int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.delivered), r.attempts
}

// TestWebhookEventsSurviveKillNine: message.created events of sends that
// were acknowledged while the endpoint hung are all delivered after chatd
// is killed with SIGKILL and restarted, each under one delivery id; a
// redelivery over the API sends one again with the same id.
func TestWebhookEventsSurviveKillNine(t *testing.T) {
	rec := &hookRecorder{hold: make(chan struct{}), delivered: map[string]json.RawMessage{}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	defer func() {
		rec.mu.Lock()
		if rec.hold != nil {
			close(rec.hold)
			rec.hold = nil
		}
		rec.mu.Unlock()
	}()

	flags := []string{"--webhook-loopback"}
	p := startBinary(t, 0, flags...)
	app := p.app("shop")
	pushUser(t, app, "alice")
	pushUser(t, app, "bob")
	ctx := context.Background()
	url := srv.URL + "/hooks"
	ep, err := app.CreateWebhookEndpoint(ctx, apiclient.WebhookEndpointInput{URL: &url, Events: []string{"message.created"}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	for i := 0; i < n; i++ {
		if _, err := app.Send(ctx, apiclient.SendInput{From: "alice", To: "bob", Type: "text",
			Content: json.RawMessage(`{"text":"m` + strconv.Itoa(i) + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	// Acks came back while the endpoint hung: nothing was delivered.
	if d, _ := rec.count(); d != 0 {
		t.Fatalf("%d delivered while the receiver hung", d)
	}
	p.kill9()

	rec.mu.Lock()
	close(rec.hold)
	rec.hold = nil
	rec.mu.Unlock()
	q := startBinaryIn(t, p.dir, 0, flags...)
	shop := &apiclient.Client{BaseURL: "http://" + q.httpAddr, App: app.App, Secret: app.Secret, HTTP: &http.Client{Timeout: 10 * time.Second}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if d, _ := rec.count(); d >= n {
			break
		}
		if time.Now().After(deadline) {
			d, a := rec.count()
			t.Fatalf("%d of %d events delivered after the restart (%d attempts)", d, n, a)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// One delivery per message, each seq once.
	seqs := map[uint64]bool{}
	rec.mu.Lock()
	for id, body := range rec.delivered {
		var ev struct {
			ID   string `json:"id"`
			Data struct {
				Seq uint64 `json:"seq"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &ev); err != nil || ev.ID != id {
			t.Errorf("delivery %s: body %s", id, body)
		}
		seqs[ev.Data.Seq] = true
	}
	rec.mu.Unlock()
	if len(seqs) != n {
		t.Errorf("%d distinct seqs delivered, want %d", len(seqs), n)
	}
	// The list shows them delivered; a redelivery sends one again.
	var ds []apiclient.WebhookDelivery
	for {
		ds, err = shop.WebhookDeliveries(ctx, 100, "", "delivered", false)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(ds) != n || ds[0].Endpoint != ep.ID || ds[0].ResponseCode != 200 {
		t.Fatalf("%d deliveries listed delivered, want %d: %+v", len(ds), n, ds)
	}
	_, before := rec.count()
	if k, err := shop.RedeliverWebhooks(ctx, apiclient.Redeliver{DeliveryIDs: []string{ds[0].ID}}); err != nil || k != 1 {
		t.Fatalf("redeliver = %d, %v", k, err)
	}
	for {
		if _, a := rec.count(); a == before+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the redelivery never came")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A loopback URL is refused without the setting.
	r := startBinary(t, 0)
	other := r.app("other")
	if _, err := other.CreateWebhookEndpoint(ctx, apiclient.WebhookEndpointInput{URL: &url, Events: []string{"*"}}); err == nil {
		t.Fatal("a loopback endpoint was accepted without webhook_loopback")
	} else if ae, ok := err.(*apiclient.APIError); !ok || ae.Code != "bad_request" {
		t.Fatalf("loopback endpoint: %v, want bad_request", err)
	}
}

// TestWebhookPresenceSurvivesKillNine: users online when chatd is killed
// with SIGKILL get their user.offline ("reason": "restart") when it starts
// again, each exactly once; a user who left before the kill gets none more.
func TestWebhookPresenceSurvivesKillNine(t *testing.T) {
	rec := &hookRecorder{delivered: map[string]json.RawMessage{}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	flags := []string{"--webhook-loopback"}
	p := startBinary(t, 0, flags...)
	app := p.app("shop")
	ctx := context.Background()
	url := srv.URL + "/hooks"
	if _, err := app.CreateWebhookEndpoint(ctx, apiclient.WebhookEndpointInput{URL: &url,
		Events: []string{"user.online", "user.offline"}}); err != nil {
		t.Fatal(err)
	}
	for _, uid := range []string{"alice", "bob", "carol"} {
		c := dialRaw(t, p.wsAddr, "", 0)
		c.login(t, app.App, pushUser(t, app, uid))
		if uid == "carol" {
			c.Close() // carol leaves before the crash
		}
	}
	presence := func() map[string][]string {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		out := map[string][]string{}
		for _, body := range rec.delivered {
			var ev struct {
				Type string `json:"type"`
				Data struct {
					UID    string `json:"uid"`
					Reason string `json:"reason"`
				} `json:"data"`
			}
			if err := json.Unmarshal(body, &ev); err != nil {
				t.Fatal(err)
			}
			out[ev.Data.UID] = append(out[ev.Data.UID], ev.Type+":"+ev.Data.Reason)
		}
		for _, evs := range out {
			sort.Strings(evs)
		}
		return out
	}
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := fmt.Sprint(presence())
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("presence deliveries %s, want %s", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("map[alice:[user.online:] bob:[user.online:] carol:[user.offline:disconnected user.online:]]")
	p.kill9()
	startBinaryIn(t, p.dir, 0, flags...)
	waitFor("map[alice:[user.offline:restart user.online:] bob:[user.offline:restart user.online:] carol:[user.offline:disconnected user.online:]]")
}
