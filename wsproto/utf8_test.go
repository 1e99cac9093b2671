package wsproto

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// validStream feeds p to a fresh validator in the given pieces.
func validStream(pieces ...[]byte) bool {
	var s utf8State
	for _, p := range pieces {
		if !s.write(p) {
			return false
		}
	}
	return s == utf8Accept
}

// isValidPrefix reports whether some continuation makes p valid UTF-8: the
// reference for "fails on the first invalid byte".
func isValidPrefix(p []byte) bool {
	if utf8.Valid(p) {
		return true
	}
	conts := []byte{0x80, 0x90, 0xA0, 0xBF}
	var try func(q []byte, depth int) bool
	try = func(q []byte, depth int) bool {
		if utf8.Valid(q) {
			return true
		}
		if depth == 3 {
			return false
		}
		for _, c := range conts {
			if try(append(q[:len(q):len(q)], c), depth+1) {
				return true
			}
		}
		return false
	}
	return try(p, 0)
}

func TestUTF8VectorsMatchStdlib(t *testing.T) {
	for _, v := range utf8Vectors {
		if utf8.Valid([]byte(v.s)) != v.valid {
			t.Fatalf("%s: vector disagrees with unicode/utf8", v.name)
		}
		if validStream([]byte(v.s)) != v.valid {
			t.Fatalf("%s: validator = %v", v.name, !v.valid)
		}
		// Every split into two pieces, and byte by byte.
		b := []byte(v.s)
		for cut := 0; cut <= len(b); cut++ {
			if validStream(b[:cut], b[cut:]) != v.valid {
				t.Fatalf("%s: split at %d gives %v", v.name, cut, !v.valid)
			}
		}
		var pieces [][]byte
		for i := range b {
			pieces = append(pieces, b[i:i+1])
		}
		if validStream(pieces...) != v.valid {
			t.Fatalf("%s: byte by byte gives %v", v.name, !v.valid)
		}
	}
}

// Every sequence of up to 3 bytes, and random longer strings biased towards
// multi-byte characters, agree with unicode/utf8, whole and byte by byte;
// and feeding byte by byte fails exactly at the first byte after which no
// continuation could make the text valid.
func TestUTF8ExhaustiveAndFailFast(t *testing.T) {
	check := func(b []byte) {
		want := utf8.Valid(b)
		if validStream(b) != want {
			t.Fatalf("% x: validator = %v, utf8.Valid = %v", b, !want, want)
		}
		for cut := 0; cut <= len(b); cut++ {
			if validStream(b[:cut], b[cut:]) != want {
				t.Fatalf("% x split at %d: validator = %v", b, cut, !want)
			}
		}
		var s utf8State
		for i := range b {
			ok := s.write(b[i : i+1])
			if ok != isValidPrefix(b[:i+1]) {
				t.Fatalf("% x: after byte %d write=%v, valid prefix=%v", b, i, ok, !ok)
			}
			if !ok {
				return
			}
		}
		if (s == utf8Accept) != want {
			t.Fatalf("% x: final state %d", b, s)
		}
	}
	for a := 0; a < 256; a++ {
		check([]byte{byte(a)})
		for b := 0x80; b < 0xC0; b++ { // second byte: continuations matter
			check([]byte{byte(a), byte(b)})
		}
		check([]byte{byte(a), 'x'})
	}
	for a := 0xE0; a < 0x100; a++ {
		for b := 0x7F; b <= 0xC0; b++ {
			for c := 0x7F; c <= 0xC0; c++ {
				check([]byte{byte(a), byte(b), byte(c)})
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte{'a', 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xE1, 0xED, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF}
	for range 200000 {
		b := make([]byte, 1+rng.IntN(12))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		check(b)
	}
	// Random valid text of runes of every length across the 8-byte ASCII
	// fast path.
	for range 2000 {
		var b []byte
		for range rng.IntN(40) {
			switch rng.IntN(4) {
			case 0:
				b = append(b, "plain ascii text"[:rng.IntN(16)]...)
			default:
				b = utf8.AppendRune(b, rune(rng.IntN(0x110000)))
			}
		}
		if !validStream(b) {
			t.Fatalf("valid text rejected: % x", b)
		}
		cut := rng.IntN(len(b) + 1)
		if !validStream(b[:cut], b[cut:]) {
			t.Fatalf("valid text split at %d rejected", cut)
		}
	}
}
