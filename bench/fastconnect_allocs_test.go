//go:build !race

package bench

import (
	"testing"

	"chatd/wsproto"
)

// TestFastConnectWireAllocs pins the per-connection wire work of the fast
// connector — key, upgrade request, accept check, login frame — at zero
// allocations.
func TestFastConnectWireAllocs(t *testing.T) {
	head := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
	appJSON := appendJSONString(nil, "chatbench")
	req := make([]byte, 0, 512)
	payload := make([]byte, 0, 512)
	frame := make([]byte, 0, 512)
	tests := []struct {
		name string
		fn   func()
	}{
		{name: "key and upgrade request", fn: func() {
			key := newWSKey(1, 2)
			req = appendUpgradeRequest(req[:0], "127.0.0.1:22886", "/", key[:])
		}},
		{name: "accept check", fn: func() {
			key := newWSKey(3, 4)
			want := acceptFor(key)
			resp := append(append(req[:0], head...), want[:]...)
			resp = append(resp, "\r\n"...)
			if err := checkUpgrade(resp, want[:]); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "login frame", fn: func() {
			payload = appendLoginPayload(payload[:0], 1, appJSON, "AbCdEf0123456789-_AbCdEf0123456789")
			frame = appendClientFrame(frame[:0], wsproto.OpText, payload, [4]byte{1, 2, 3, 4})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tt.fn); n != 0 {
				t.Errorf("%v allocs per run, want 0", n)
			}
		})
	}
}
