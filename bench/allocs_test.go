//go:build !race

package bench

import (
	"net"
	"strconv"
	"testing"
	"time"
)

// discardConn is a net.Conn whose writes vanish.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }
func (discardConn) Close() error                { return nil }

// The per-message paths of a run must not allocate: with tens of
// thousands of messages a second on a 2-core box shared with the server,
// garbage would show up as client-made latency.
func TestHotPathAllocs(t *testing.T) {
	clk := newClock()
	tr := newTraffic(clk, "abcdefgh")
	cfg := &connCfg{clk: clk, tr: tr, window: 256, text: "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", runTag: "abcdefgh", maxFrame: 1 << 20}
	c := newWSConn(discardConn{}, cfg, 3, "bench-000003", 1)
	event := []byte(`{"event":"message","data":{"session_id":12,"seq":345,"msg_id":"12-345","from":"bench-000007","type":"text","content":{"t":987654321,"r":"abcdefgh","text":"xxxx"},"cid":"ab.1.2","created_at":1766000000123}}`)

	// Warm up: the pending map and the write buffer reach their size.
	for range 300 {
		c.send(clk.now(), 77)
	}
	for id := uint64(1); id <= 300; id++ {
		c.dispatch([]byte(`{"reply_to":` + strconv.FormatUint(id, 10) + `,"ok":true,"data":{"session_id":77,"seq":1,"msg_id":"77-1","created_at":1}}`))
	}

	tests := []struct {
		name string
		fn   func()
	}{
		{name: "parse message event", fn: func() { parseMessage(event) }},
		{name: "dispatch message event", fn: func() { c.dispatch(event) }},
		{name: "record latency", fn: func() { tr.delivery.Record(5, 300*time.Microsecond) }},
	}
	ack := make([]byte, 0, 256)
	var next uint64 = 301
	tests = append(tests, struct {
		name string
		fn   func()
	}{name: "send and its ack", fn: func() {
		c.send(clk.now(), 77)
		ack = ack[:0]
		ack = append(ack, `{"reply_to":`...)
		ack = strconv.AppendUint(ack, next, 10)
		ack = append(ack, `,"ok":true,"data":{"session_id":77,"seq":2,"msg_id":"77-2","created_at":1}}`...)
		next++
		c.dispatch(ack)
	}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(200, tt.fn); n != 0 {
				t.Fatalf("%v allocs/op, want 0", n)
			}
		})
	}
	if tr.delivered.Load() == 0 || tr.acked.Load() < 300 {
		t.Fatalf("the measured paths did not run: delivered %d acked %d", tr.delivered.Load(), tr.acked.Load())
	}
}
