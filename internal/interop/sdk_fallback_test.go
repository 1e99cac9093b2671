package interop_test

import (
	"strconv"
	"testing"
	"time"

	"chatd/chat"
	"chatd/internal/teststack"
)

// The SDK's HTTP transports against a real chatd: in a group with bob on a
// WebSocket, alice on long-poll and carol on transport 'auto' with a
// WebSocket that cannot connect (so it falls back to SSE) lose the network
// with a send in flight, queue sends and miss bob's N messages; then they
// come back and carol sends 100 at once over POST /v1/client, far past
// the send rate (a burst of 20, 50 a second), so her SDK retries refused
// sends. Both must hold exactly what the server stored, each message once,
// in seq order, and each of their sends must be stored once. The
// checks are in node/sdk_fallback.mjs; this test gives it a server and
// reads its report.
func TestSDKFallbackTransports(t *testing.T) {
	const n = 100
	var r struct {
		Stored       int      `json:"stored"`
		ReceivedA    int      `json:"received_a"`
		ReceivedC    int      `json:"received_c"`
		TransportA   string   `json:"transport_a"`
		TransportC   string   `json:"transport_c"`
		LoginsA      int      `json:"logins_a"`
		LoginsC      int      `json:"logins_c"`
		CRateLimited int      `json:"c_rate_limited"`
		Errors       []string `json:"errors"`
	}
	runSDKScript(t, teststack.Options{Limits: chat.Limits{SendRate: 50, SendBurst: 20}}, "sdkhttp",
		[]string{"alice", "bob", "carol"}, 100*time.Second, &r, "sdk_fallback.mjs", "{ws}", "{http}", "sdkhttp",
		"{token:alice}", "{token:bob}", "{token:carol}", "alice", "carol", strconv.Itoa(n))
	if r.ReceivedA != r.Stored || r.ReceivedC != r.Stored || r.Stored < n || len(r.Errors) != 0 {
		t.Fatalf("report %+v", r)
	}
	if r.TransportA != "longpoll" || r.TransportC != "sse" {
		t.Fatalf("transports: alice %q, carol %q; want longpoll and sse", r.TransportA, r.TransportC)
	}
	if r.LoginsA < 2 || r.LoginsC < 2 {
		t.Fatalf("alice logged in %d times, carol %d; the test did not take them offline", r.LoginsA, r.LoginsC)
	}
	if r.CRateLimited == 0 {
		t.Fatalf("no send of carol's was refused rate_limited; the HTTP retry path went untested")
	}
}
