package storage

import (
	"bytes"
	"encoding/binary"
	"testing"

	"chatd/chat"
)

func TestRestrictionCodec(t *testing.T) {
	for _, r := range []chat.Restriction{
		{},
		{App: "shop", UID: "李雷", Kind: chat.RestrictBan, Until: 1766000000000, Reason: "spam ✓", CreatedAt: 1765000000000},
		{App: "a", UID: "u\x00v", Kind: chat.RestrictMute, Until: 0, CreatedAt: -1},
	} {
		var got chat.Restriction
		v := appendRestriction(nil, &r)
		if !decodeRestriction(v, &got) || got != r {
			t.Fatalf("Restriction round trip: %+v -> %+v", r, got)
		}
		checkRejectsPrefixes(t, v, func(b []byte) bool { var x chat.Restriction; return decodeRestriction(b, &x) })
	}
}

// An App record written before the limits existed (no trailing fields)
// still decodes, with no limits; one with limits round-trips; and nothing
// but the old record's own end is accepted as a shorter record.
func TestAppLimitsCodec(t *testing.T) {
	// The encoding of schema 2's App as written before the limits.
	old := []byte{recordV1}
	for _, s := range []string{"shop", "Shop", "s3cr3t"} {
		old = binary.AppendUvarint(old, uint64(len(s)))
		old = append(old, s...)
	}
	old = binary.AppendVarint(old, 1766000000000)
	var got chat.App
	if !decodeApp(old, &got) || got != (chat.App{ID: "shop", Name: "Shop", Secret: "s3cr3t", CreatedAt: 1766000000000}) {
		t.Fatalf("old App record decoded to %+v", got)
	}
	if v := appendApp(nil, &got); !bytes.Equal(v, old) {
		t.Fatalf("an app without limits encodes as %x, not as before (%x)", v, old)
	}

	a := got
	a.MaxUsers, a.MaxGroups = 1000, 0
	v := appendApp(nil, &a)
	if !decodeApp(v, &got) || got != a {
		t.Fatalf("App with limits round trip: %+v -> %+v", a, got)
	}
	for i := range len(v) {
		if i != len(old) && decodeApp(v[:i], &chat.App{}) {
			t.Fatalf("decoded a %d-byte prefix of %x", i, v)
		}
	}
	if decodeApp(append(bytes.Clone(v), 0), &chat.App{}) {
		t.Fatalf("decoded %x with a trailing byte", v)
	}
}
