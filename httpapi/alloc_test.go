//go:build !race

package httpapi

import (
	"testing"
)

func TestResolveAllocs(t *testing.T) {
	paths := [][]byte{
		[]byte("/api/v1/messages"),
		[]byte("/api/v1/users/alice/tokens"),
		[]byte("/api/v1/sessions/42/messages"),
		[]byte("/v1/client"),
		[]byte("/nope"),
	}
	n := testing.AllocsPerRun(100, func() {
		for _, p := range paths {
			resolve(p)
		}
	})
	if n != 0 {
		t.Fatalf("resolve: %v allocs/op", n)
	}
}

func TestNonceAddAllocs(t *testing.T) {
	c := newNonceCache(300, 1000, 1000)
	nonce := []byte("nonce-allocs-1")
	c.add(kindApp, "shop", nonce, 400, 100)
	n := testing.AllocsPerRun(100, func() {
		if c.add(kindApp, "shop", nonce, 400, 100) != nonceReplay {
			t.Fatal("not a replay")
		}
	})
	if n != 0 {
		t.Fatalf("nonce lookup: %v allocs/op", n)
	}
}

func TestAmbiguousLengthAllocs(t *testing.T) {
	raw := []byte("Host: chatd.test\r\nContent-Type: application/json\r\nContent-Length: 15\r\nX-Chatd-App: shop\r\n")
	n := testing.AllocsPerRun(100, func() {
		if ambiguousLength(raw) {
			t.Fatal("ambiguous")
		}
	})
	if n != 0 {
		t.Fatalf("ambiguousLength: %v allocs/op", n)
	}
}
