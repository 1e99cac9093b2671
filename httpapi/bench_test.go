package httpapi

import (
	"strconv"
	"testing"
)

func BenchmarkResolve(b *testing.B) {
	p := []byte("/api/v1/sessions/42/messages")
	b.ReportAllocs()
	for b.Loop() {
		resolve(p)
	}
}

func BenchmarkNonceAdd(b *testing.B) {
	c := newNonceCache(300, 10_000_000, 10_000_000)
	nonces := make([][]byte, 1<<16)
	for i := range nonces {
		nonces[i] = []byte("bench-nonce-" + strconv.Itoa(i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.add(kindApp, "shop", nonces[i&(len(nonces)-1)], int64(400+i), 100)
		i++
	}
}

func BenchmarkSignature(b *testing.B) {
	key, body := []byte(vecKey), []byte(vecBody)
	var sum [32]byte
	b.ReportAllocs()
	for b.Loop() {
		signature(sum[:0], key, []byte("POST"), []byte(vecPath), []byte(vecTS), []byte(vecNonce), body)
	}
}
