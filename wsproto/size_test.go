package wsproto

import (
	"testing"
	"unsafe"
)

// A server holds one Reader per connection: it stays 16 bytes, and the
// fragment state is allocated only by a fragmented message.
func TestReaderSize(t *testing.T) {
	if got := unsafe.Sizeof(Reader{}); got > 16 {
		t.Fatalf("Reader is %d bytes, want at most 16", got)
	}
	var r Reader
	if _, err := readAll(t, &r, encode(text("one"), ping("p"), text("two")), 0); err != nil {
		t.Fatal(err)
	}
	if r.frag != nil {
		t.Fatalf("unfragmented messages allocated the fragment state")
	}
	if _, err := readAll(t, &r, encode(frag(OpText, "a", false), frag(OpContinuation, "b", true)), 0); err != nil {
		t.Fatal(err)
	}
	if r.frag == nil || r.frag.size != 0 || len(r.frag.buf) != 0 {
		t.Fatalf("after a fragmented message: frag %+v", r.frag)
	}
}
