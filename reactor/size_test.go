package reactor

import (
	"testing"
	"unsafe"
)

// The server holds one conn per connection: it stays within the 128-byte
// malloc size class (see the comment on conn).
func TestConnSize(t *testing.T) {
	if got := unsafe.Sizeof(conn{}); got > 128 {
		t.Fatalf("conn is %d bytes, want at most 128", got)
	}
}
