package bench

import (
	"testing"
)

func TestReplyID(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantID   uint64
		wantRest string
		wantOK   bool
	}{
		{name: "ack", in: `{"reply_to":17,"ok":true,"data":{"session_id":3,"seq":9}}`, wantID: 17, wantRest: `,"ok":true,"data":{"session_id":3,"seq":9}}`, wantOK: true},
		{name: "error", in: `{"reply_to":2,"ok":false,"error":{"code":"forbidden","message":"x"}}`, wantID: 2, wantRest: `,"ok":false,"error":{"code":"forbidden","message":"x"}}`, wantOK: true},
		{name: "string id is not ours", in: `{"reply_to":"a","ok":true}`},
		{name: "null id", in: `{"reply_to":null,"ok":false}`},
		{name: "event", in: `{"event":"message","data":{}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, rest, ok := replyID([]byte(tt.in))
			if ok != tt.wantOK || id != tt.wantID || string(rest) != tt.wantRest {
				t.Fatalf("replyID = %d, %q, %v; want %d, %q, %v", id, rest, ok, tt.wantID, tt.wantRest, tt.wantOK)
			}
		})
	}
}

func TestParseMessage(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   msgFields
		wantOK bool
	}{
		{
			name:   "chatbench message",
			in:     `{"event":"message","data":{"session_id":12,"seq":345,"msg_id":"12-345","from":"bench-000007","type":"text","content":{"t":987654321,"r":"k3j2","text":"xxxx"},"cid":"ab.1.2","created_at":1766000000123}}`,
			want:   msgFields{session: 12, seq: 345, t: 987654321, hasT: true, tag: []byte("k3j2"), from: []byte("bench-000007")},
			wantOK: true,
		},
		{
			name:   "content without t",
			in:     `{"event":"message","data":{"session_id":1,"seq":2,"msg_id":"1-2","from":"u","type":"text","content":{"text":"\"t\":5"},"created_at":1}}`,
			want:   msgFields{session: 1, seq: 2, from: []byte("u")},
			wantOK: true,
		},
		{
			name:   "system notice without from",
			in:     `{"event":"message","data":{"session_id":4,"seq":1,"msg_id":"4-1","from":"","type":"notice","content":{"t":1,"text":"n"},"created_at":1}}`,
			want:   msgFields{session: 4, seq: 1, t: 1, hasT: true, from: []byte("")},
			wantOK: true,
		},
		{name: "other event", in: `{"event":"presence","data":{"uid":"u"}}`},
		{name: "reply", in: `{"reply_to":1,"ok":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseMessage([]byte(tt.in))
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				return
			}
			if got.session != tt.want.session || got.seq != tt.want.seq || got.t != tt.want.t ||
				got.hasT != tt.want.hasT || string(got.from) != string(tt.want.from) || string(got.tag) != string(tt.want.tag) {
				t.Fatalf("parseMessage = %+v (from %q), want %+v (from %q)", got, got.from, tt.want, tt.want.from)
			}
		})
	}
}

func TestFieldHelpers(t *testing.T) {
	p := []byte(`,"ok":false,"error":{"code":"rate_limited","message":"m"},"seq":18446744073709551615}`)
	if c, ok := fieldString(p, keyCode); !ok || string(c) != "rate_limited" {
		t.Errorf("code = %q, %v", c, ok)
	}
	if v, ok := fieldUint(p, keySeq); !ok || v != 18446744073709551615 {
		t.Errorf("seq = %d, %v", v, ok)
	}
	if _, ok := fieldUint(p, keySessionID); ok {
		t.Error("absent session_id found")
	}
	if _, ok := fieldString([]byte(`"code":"unterminated`), keyCode); ok {
		t.Error("unterminated string accepted")
	}
}
