package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func getText(t *testing.T, hc *http.Client, path string) (int, string) {
	t.Helper()
	resp, err := hc.Get(baseURL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMsgTrace checks GET /debug/msgtrace: the WebSocket sends answered
// while it runs come back one line each, under the session and seq their
// acks carried, with their times in order.
func TestMsgTrace(t *testing.T) {
	h := newHarness(t, nil)
	shop := h.app("shop")
	tok := h.user(shop, "alice")
	h.user(shop, "bob")
	hd, p := h.login("shop", tok)
	defer hd.HandleClose()

	type reply struct {
		code int
		body string
	}
	got := make(chan reply, 1)
	go func() {
		code, body := getText(t, h.local, "/debug/msgtrace?seconds=1.5")
		got <- reply{code, body}
	}()
	acked := map[string]bool{}
	for i := 0; i < 50; i++ {
		p.mu.Lock()
		n := len(p.msgs)
		p.mu.Unlock()
		hd.HandleMessage([]byte(`{"id":"s` + strconv.Itoa(i) + `","action":"send","to":"bob","type":"text","content":{"text":"hi"}}`))
		for deadline := time.Now().Add(5 * time.Second); ; {
			p.mu.Lock()
			var ack string
			if len(p.msgs) > n {
				ack = p.msgs[n]
			}
			p.mu.Unlock()
			if ack != "" {
				var f struct {
					OK   bool `json:"ok"`
					Data struct {
						Session uint64 `json:"session_id"`
						Seq     uint64 `json:"seq"`
					} `json:"data"`
				}
				if err := json.Unmarshal([]byte(ack), &f); err != nil || !f.OK {
					t.Fatalf("send %d answered %s", i, ack)
				}
				acked[strconv.FormatUint(f.Data.Session, 10)+" "+strconv.FormatUint(f.Data.Seq, 10)] = true
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("send %d not answered", i)
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := <-got
	if r.code != 200 {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	lines := strings.Split(strings.TrimSuffix(r.body, "\n"), "\n")
	if !strings.HasPrefix(lines[0], "# chatd message trace: session seq decoded commit_start commit_end answered") {
		t.Fatalf("no header: %q", lines[0])
	}
	recs := lines[1:]
	if !strings.Contains(lines[0], "; "+strconv.Itoa(len(recs))+" records, 0 dropped") {
		t.Fatalf("header %q does not count the %d records", lines[0], len(recs))
	}
	if len(recs) == 0 {
		t.Fatal("no records: the sends during the trace are missing")
	}
	for _, l := range recs {
		f := strings.Fields(l)
		if len(f) != 6 {
			t.Fatalf("record %q: want 6 fields", l)
		}
		if !acked[f[0]+" "+f[1]] {
			t.Errorf("record %q is no acknowledged send", l)
		}
		var ts [4]int64
		for i := range ts {
			ts[i], _ = strconv.ParseInt(f[2+i], 10, 64)
		}
		if !(ts[0] > 0 && ts[0] <= ts[1] && ts[1] <= ts[2] && ts[2] <= ts[3]) {
			t.Errorf("record %q: times out of order", l)
		}
	}
}

// TestMsgTraceErrors checks the endpoint's refusals: bad arguments, a
// second trace while one runs, and a peer that is not on loopback.
func TestMsgTraceErrors(t *testing.T) {
	h := newHarness(t, nil)
	for _, q := range []string{"seconds=0", "seconds=abc", "seconds=301", "max=0", "max=x"} {
		code, body := getText(t, h.local, "/debug/msgtrace?"+q)
		if code != 400 || !strings.Contains(body, `"bad_request"`) {
			t.Errorf("%s: %d %s, want 400 bad_request", q, code, body)
		}
	}
	done := make(chan struct{})
	go func() {
		getText(t, h.local, "/debug/msgtrace?seconds=2")
		close(done)
	}()
	// /metrics says when it runs.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(scrapeText(t, h), "\nchatd_message_trace_running 1\n"); {
		if time.Now().After(deadline) {
			t.Fatal("chatd_message_trace_running never became 1")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code, body := getText(t, h.local, "/debug/msgtrace?seconds=0.001"); code != 409 || !strings.Contains(body, `"conflict"`) {
		t.Errorf("a trace while another ran: %d %s, want 409 conflict", code, body)
	}
	<-done
	if !strings.Contains(scrapeText(t, h), "\nchatd_message_trace_running 0\n") {
		t.Error("chatd_message_trace_running is not 0 once the trace has ended")
	}
	if code, body := getText(t, h.remote, "/debug/msgtrace?seconds=0.01"); code != 403 {
		t.Errorf("remote peer: %d %s, want 403", code, body)
	}
}

func scrapeText(t *testing.T, h *harness) string {
	t.Helper()
	_, body := getText(t, h.local, "/metrics")
	return body
}
