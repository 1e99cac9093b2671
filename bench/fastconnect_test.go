package bench

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"chatd/wsproto"
)

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		s    string
	}{
		{name: "empty", s: ""},
		{name: "token", s: "Zm9vYmFy-_.~0123456789abcdefABCDEF"},
		{name: "quote and backslash", s: `a"b\c`},
		{name: "html characters", s: "<a href='x'>&</a>"},
		{name: "control characters", s: "tab\there\nnewline\x00nul\x1f"},
		{name: "non-ASCII", s: "chatbench 聊天 ünïcode \u2028 line separator"},
		{name: "invalid UTF-8", s: "bad \xff byte"},
		{name: "DEL", s: "del\x7f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.Marshal(tt.s)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendJSONString([]byte("x"), tt.s); string(got) != "x"+string(want) {
				t.Errorf("appendJSONString(%q) = %s, want x%s", tt.s, got, want)
			}
		})
	}
}

func TestUpgradeRequestAndAcceptKey(t *testing.T) {
	key := newWSKey(0x0123456789abcdef, 0xfedcba9876543210)
	req := appendUpgradeRequest(nil, "127.0.0.1:22886", "/chat", key[:])
	// The request is one a WebSocket server accepts, with our key.
	parsed, n, err := wsproto.ParseHandshake(req, &wsproto.HandshakeConfig{})
	if err != nil || n != len(req) {
		t.Fatalf("ParseHandshake: %v (used %d of %d bytes)\n%s", err, n, len(req), req)
	}
	if parsed.Key != string(key[:]) || parsed.Path != "/chat" {
		t.Errorf("parsed key %q path %q, want %q and /chat", parsed.Key, parsed.Path, key)
	}
	acc := acceptFor(key)
	if want := wsproto.AcceptKey(string(key[:])); string(acc[:]) != want {
		t.Errorf("acceptFor = %s, want %s", acc, want)
	}
	// RFC 6455 §1.3's example.
	var sample [wsKeyLen]byte
	copy(sample[:], "dGhlIHNhbXBsZSBub25jZQ==")
	if acc := acceptFor(sample); string(acc[:]) != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("acceptFor(RFC sample) = %s", acc)
	}
	if a, b := newWSKey(1, 2), newWSKey(1, 3); a == b {
		t.Error("different random words gave the same key")
	}
}

func TestCheckUpgrade(t *testing.T) {
	var key [wsKeyLen]byte
	copy(key[:], "dGhlIHNhbXBsZSBub25jZQ==")
	want := acceptFor(key)
	tests := []struct {
		name    string
		head    string
		wantErr string
	}{
		{name: "ok", head: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"},
		{name: "header name in any case, spaces around the value", head: "HTTP/1.1 101 OK\r\nsec-websocket-accept:   s3pPLMBiTxaQ9kYGzzhZRbK+xOo= \r\n"},
		{name: "refused", head: "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n", wantErr: "HTTP 503"},
		{name: "wrong accept", head: "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: nope\r\n", wantErr: "wrong Sec-WebSocket-Accept"},
		{name: "no accept", head: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n", wantErr: "no Sec-WebSocket-Accept"},
		{name: "not HTTP", head: "SSH-2.0-OpenSSH\r\n", wantErr: "bad response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkUpgrade([]byte(tt.head), want[:])
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("checkUpgrade: %v", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Errorf("checkUpgrade: %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestClientFramesAndLoginPayload(t *testing.T) {
	tests := []struct {
		name    string
		op      wsproto.Opcode
		payload string
	}{
		{name: "login", op: wsproto.OpText, payload: string(appendLoginPayload(nil, 2, appendJSONString(nil, "app<1>"), "tok\"en"))},
		{name: "pong, empty", op: wsproto.OpPong, payload: ""},
		{name: "close 1000", op: wsproto.OpClose, payload: string(closeNormalPayload)},
		{name: "16-bit length", op: wsproto.OpText, payload: strings.Repeat("z", 300)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := [4]byte{1, 2, 3, 4}
			b := appendClientFrame([]byte("prefix"), tt.op, []byte(tt.payload), key)
			if string(b[:6]) != "prefix" {
				t.Fatalf("prefix overwritten: %q", b[:6])
			}
			f, err := ws.ReadFrame(strings.NewReader(string(b[6:])))
			if err != nil {
				t.Fatal(err)
			}
			if !f.Header.Fin || !f.Header.Masked || f.Header.Mask != key || int(f.Header.OpCode) != int(tt.op) {
				t.Errorf("header %+v", f.Header)
			}
			f = ws.UnmaskFrameInPlace(f)
			if string(f.Payload) != tt.payload {
				t.Errorf("payload %q, want %q", f.Payload, tt.payload)
			}
		})
	}
	var login map[string]any
	if err := json.Unmarshal(appendLoginPayload(nil, 2, appendJSONString(nil, "app<1>"), "tok\"en"), &login); err != nil {
		t.Fatal(err)
	}
	if login["id"] != 2.0 || login["action"] != "login" || login["app"] != "app<1>" || login["token"] != "tok\"en" {
		t.Errorf("login payload decodes to %v", login)
	}
}

func TestCloseFrameError(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    string
	}{
		{name: "code and reason", payload: append([]byte{0x03, 0xE9}, "going away"...), want: "closed by server: 1001 going away"},
		{name: "code only", payload: []byte{0x0F, 0xA1}, want: "closed by server: 4001"},
		{name: "empty", payload: nil, want: "closed by server: 1005"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := closeFrameError(tt.payload).Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNoteRampCPU(t *testing.T) {
	now, ok := cpuTime()
	if !ok {
		t.Skip("no CPU time on this platform")
	}
	tests := []struct {
		name     string
		cpuSpent time.Duration // pretended CPU use over one second of ramp
		wantNote string        // "" for no note
	}{
		{name: "light client", cpuSpent: 0, wantNote: ""},
		{name: "client using most of the host", cpuSpent: time.Duration(runtime.NumCPU()) * time.Second,
			wantNote: "µs per connection): the connect rate may be the client's limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &env{rep: &Report{}}
			e.noteRampCPU(now-tt.cpuSpent, true, time.Now().Add(-time.Second), int64(runtime.NumCPU())*1000)
			switch {
			case tt.wantNote == "" && len(e.rep.Notes) != 0:
				t.Errorf("notes %q, want none", e.rep.Notes)
			case tt.wantNote != "" && (len(e.rep.Notes) != 1 || !strings.Contains(e.rep.Notes[0], tt.wantNote)):
				t.Errorf("notes %q, want one containing %q", e.rep.Notes, tt.wantNote)
			}
		})
	}
}
