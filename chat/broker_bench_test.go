package chat

import "testing"

// nopBroker is a Broker that drops what it is given (benchmarks).
type nopBroker struct{ n int }

func (b *nopBroker) Node() string                        { return "a" }
func (b *nopBroker) Publish(node string, m []byte) error { b.n += len(m); return nil }
func (b *nopBroker) Subscribe(fn func([]byte)) error     { return nil }

type nopPeer struct{}

func (nopPeer) Send([]byte) bool   { return true }
func (nopPeer) Close(int, string)  {}
func (nopPeer) RemoteAddr() string { return "" }

// The cost of one delivery to a device on another node: encoding it on
// the sending node (mirrorPeer.Send, up to the broker), and decoding it
// and handing it to the connection on the receiving node (the broker's
// own cost, NATS, is apart: see cluster's benchmark).
func BenchmarkClusterDeliver(b *testing.B) {
	frame := []byte(`{"event":"message","data":{"session_id":1234,"seq":5678,"from":"alice","type":"text","content":{"text":"hello there, how are you today?"},"created_at":1800000000000,"msg_id":"1234-5678"}}`)
	c := &Core{}
	k := newCluster(c, &nopBroker{})
	b.Run("encode", func(b *testing.B) {
		p := &mirrorPeer{k: k, node: "b", conn: 123456}
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			p.Send(frame)
		}
	})
	b.Run("decode", func(b *testing.B) {
		cl := &Client{core: c, peer: nopPeer{}}
		k.local[123456] = cl
		msg := append([]byte{bkDeliver, 0xc0, 0xc4, 0x07}, frame...)
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			k.receive(msg)
		}
	})
}
