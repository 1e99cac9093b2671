package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"chatd/chat"
	"chatd/httpapi/apiclient"
	"chatd/internal/metrics"
	"chatd/internal/metrics/metricstest"
)

// scrape GETs /metrics with hc and parses the answer strictly.
func scrape(t *testing.T, hc *http.Client) metricstest.Families {
	t.Helper()
	resp, err := hc.Get(baseURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != metrics.ContentType {
		t.Fatalf("Content-Type %q", ct)
	}
	fams, err := metricstest.Parse(b)
	if err != nil {
		t.Fatalf("GET /metrics is not valid text format: %v\n%s", err, b)
	}
	return fams
}

// value returns a sample's value or fails.
func value(t *testing.T, fams metricstest.Families, name string, labels ...string) float64 {
	t.Helper()
	v, ok := fams.Value(name, labels...)
	if !ok {
		t.Fatalf("metric %s%v missing", name, labels)
	}
	return v
}

// recPeer is a chat.Peer that collects what it is sent.
type recPeer struct {
	mu   sync.Mutex // guards msgs
	msgs []string
	got  chan struct{}
}

func newRecPeer() *recPeer { return &recPeer{got: make(chan struct{}, 64)} }

func (p *recPeer) Send(b []byte) bool {
	p.mu.Lock()
	p.msgs = append(p.msgs, string(b))
	p.mu.Unlock()
	select {
	case p.got <- struct{}{}:
	default:
	}
	return true
}
func (p *recPeer) Close(int, string)  {}
func (p *recPeer) RemoteAddr() string { return "127.0.0.1:5555" }

// login attaches a fake connection to the core and logs it in with token;
// it waits for the reply and returns the connection's handler.
func (h *harness) login(app, token string) (chat.Handler, *recPeer) {
	h.t.Helper()
	p := newRecPeer()
	hd := h.core.Accept(p)
	hd.HandleMessage([]byte(`{"id":"1","action":"login","app":"` + app + `","token":"` + token + `"}`))
	<-p.got
	return hd, p
}

func TestMetrics(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Metrics = func(w *metrics.Writer) {
			w.Gauge("chatd_ws_connections", "From the wiring.", 3)
		}
	})
	ctx := context.Background()
	shop := h.app("shop")
	tok := h.user(shop, "alice")
	h.user(shop, "bob")
	for i := 0; i < 3; i++ {
		if _, err := shop.Send(ctx, apiclient.SendInput{From: "alice", To: "bob", Type: "text", Content: json.RawMessage(`{"text":"hi"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	hd, _ := h.login("shop", tok)
	defer hd.HandleClose()
	_, p := h.login("shop", "not-a-token")
	p.mu.Lock()
	if len(p.msgs) != 1 || !strings.Contains(p.msgs[0], `"unauthorized"`) {
		t.Fatalf("bad login answered %q", p.msgs)
	}
	p.mu.Unlock()
	if _, err := shop.User(ctx, "nobody"); err == nil {
		t.Fatal("unknown user found")
	}
	sub := h.core.Subscribe([]chat.Filter{{Topic: "all"}}, 0)
	defer sub.Close()

	fams := scrape(t, h.local)
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{name: "chatd_messages_received_total", want: 3},
		{name: "chatd_logins_total", want: 1},
		{name: "chatd_login_failures_total", want: 1},
		{name: "chatd_users_online", want: 1},
		{name: "chatd_clients_logged_in", want: 1},
		{name: "chatd_clients", want: 2},
		{name: "chatd_deliveries_total", want: 0}, // bob was never online
		{name: "chatd_deliveries_dropped_total", want: 0},
		{name: "chatd_journal_depth", want: 0},
		{name: "chatd_subscribers", want: 1},
		{name: "chatd_subscriber_events_dropped_total", want: 0},
		{name: "chatd_ws_connections", want: 3},
		{name: "chatd_info", labels: []string{"version", "v-test"}, want: 1},
		{name: "chatd_errors_total", labels: []string{"code", "conflict"}, want: 0},
	}
	for _, tc := range tests {
		if got := value(t, fams, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if got := value(t, fams, "chatd_errors_total", "code", "unauthorized"); got < 1 {
		t.Errorf("unauthorized errors = %v, want >= 1", got)
	}
	errs := fams["chatd_errors_total"]
	if errs.Type != "counter" || len(errs.Samples) != len(chat.Codes) {
		t.Errorf("chatd_errors_total: type %s, %d samples, want one per code (%d)", errs.Type, len(errs.Samples), len(chat.Codes))
	}
	if lim := fams["chatd_limited_total"]; lim.Type != "counter" || len(lim.Samples) != len(chat.LimitKinds) {
		t.Errorf("chatd_limited_total: type %s, %d samples, want one per limit (%d)", lim.Type, len(lim.Samples), len(chat.LimitKinds))
	}

	// Every write went through the journal: each commit is one observation
	// of both histograms, and the batch sizes add up to the writes.
	commits := value(t, fams, "chatd_store_commits_total")
	if commits < 3 {
		t.Fatalf("commits %v", commits)
	}
	// The three sends came over the HTTP API: no connection was acked, so
	// the send-to-ack histogram is there and empty (chat's tests count it).
	if fams["chatd_send_ack_seconds"].Type != "histogram" || value(t, fams, "chatd_send_ack_seconds_count") != 0 {
		t.Errorf("chatd_send_ack_seconds: type %q count %v, want an empty histogram", fams["chatd_send_ack_seconds"].Type, value(t, fams, "chatd_send_ack_seconds_count"))
	}
	for _, hname := range []string{"chatd_store_batch_size", "chatd_store_commit_seconds"} {
		if fams[hname].Type != "histogram" {
			t.Fatalf("%s type %s", hname, fams[hname].Type)
		}
		if n := value(t, fams, hname+"_count"); n != commits {
			t.Errorf("%s_count = %v, want the %v commits", hname, n, commits)
		}
	}
	if sum := value(t, fams, "chatd_store_commit_seconds_sum"); sum <= 0 || sum > 60 {
		t.Errorf("commit seconds sum %v", sum)
	}
	if v := value(t, fams, "chatd_store_batch_size_bucket", "le", "4096"); v != commits {
		t.Errorf("batch size le=4096 bucket %v, want every commit (%v)", v, commits)
	}
	if sum := value(t, fams, "chatd_store_batch_size_sum"); sum < commits {
		t.Errorf("batch size sum %v < commits %v", sum, commits)
	}

	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes", "process_start_time_seconds"} {
		if v := value(t, fams, name); v <= 0 {
			t.Errorf("%s = %v", name, v)
		}
	}
	before := value(t, fams, "chatd_http_requests_total", "class", "2xx")
	if before != 6 { // app, two users, three sends
		t.Errorf("2xx requests %v, want the 6 made", before)
	}
	if v := value(t, fams, "chatd_http_requests_total", "class", "4xx"); v != 1 {
		t.Errorf("4xx requests %v, want 1 (the unknown user)", v)
	}
	// The scrape itself is counted once it is answered.
	if after := value(t, scrape(t, h.local), "chatd_http_requests_total", "class", "2xx"); after != before+1 {
		t.Errorf("2xx after another scrape %v, want %v", after, before+1)
	}
}

func TestMetricsLoopbackOnly(t *testing.T) {
	tests := []struct {
		name     string
		anywhere bool
		remote   bool
		status   int
	}{
		{name: "loopback peer", status: 200},
		{name: "remote peer", remote: true, status: 403},
		{name: "remote peer, AdminFromAnywhere", remote: true, anywhere: true, status: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.AdminFromAnywhere = tc.anywhere })
			hc := h.local
			if tc.remote {
				hc = h.remote
			}
			resp, err := hc.Get(baseURL + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if tc.status == 403 && !strings.Contains(string(b), `"forbidden"`) {
				t.Fatalf("403 body %s", b)
			}
			if tc.status == 200 && !strings.Contains(string(b), "# TYPE chatd_messages_received_total counter") {
				t.Fatalf("200 body is not the metrics:\n%s", b)
			}
		})
	}
	t.Run("POST is 405", func(t *testing.T) {
		h := newHarness(t, nil)
		resp, err := h.local.Post(baseURL+"/metrics", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET" {
			t.Fatalf("POST /metrics: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
}

func TestMetricsBadFamilyIsLoggedNotFatal(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Metrics = func(w *metrics.Writer) {
			w.Counter("chatd_ws_bytes_in", "A counter without _total: refused.", 1)
			w.Gauge("chatd_ws_connections", "Still written.", 2)
		}
	})
	fams := scrape(t, h.local)
	if _, ok := fams.Value("chatd_ws_bytes_in"); ok {
		t.Fatal("invalid family written")
	}
	if value(t, fams, "chatd_ws_connections") != 2 || value(t, fams, "go_goroutines") <= 0 {
		t.Fatal("families after the bad one missing")
	}
	if !strings.Contains(h.logBuf.String(), "must end in _total") {
		t.Fatalf("bad family not logged:\n%s", h.logBuf.String())
	}
}
