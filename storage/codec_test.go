package storage

import (
	"bytes"
	"reflect"
	"testing"

	"chatd/chat"
)

func TestMessageCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		msg  chat.Message
	}{
		{name: "zero", msg: chat.Message{}},
		{name: "typical", msg: chat.Message{App: "shop", From: "u1", Type: "text", Content: []byte(`{"text":"hi"}`), CID: "c-1", CreatedAt: 1766000000123}},
		{name: "system notice", msg: chat.Message{App: "shop", Type: "notice", Content: []byte(`{}`), CreatedAt: 1}},
		{name: "negative time", msg: chat.Message{App: "a", From: "b", Type: "c", CID: "d", CreatedAt: -1 << 62}},
		{name: "binary ids", msg: chat.Message{App: "\x00\xff", From: "\x80", Type: "\x00", CID: "\x01\x02", Content: []byte{0, 1, 2}}},
		{name: "large content", msg: chat.Message{App: "a", From: "u", Type: "file", Content: bytes.Repeat([]byte("z"), 1<<20)}},
		{name: "edited", msg: chat.Message{App: "shop", From: "u1", Type: "text", Content: []byte(`{"text":"v2"}`), CreatedAt: 5, EditedAt: 1766000000999, Edits: 3}},
		{name: "edited at zero time", msg: chat.Message{App: "shop", Type: "text", Edits: 1}},
		{name: "mentions", msg: chat.Message{App: "shop", From: "u1", Type: "text", Content: []byte(`{"text":"@b @c"}`), Mentions: []string{"b", "c\x00"}}},
		{name: "mention all, edited", msg: chat.Message{App: "shop", From: "u1", Type: "text", MentionAll: true, EditedAt: 9, Edits: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := appendMessage(nil, &tc.msg)
			if len(v) > maxMessageLen(&tc.msg) {
				t.Fatalf("encoded %d bytes, maxMessageLen says %d", len(v), maxMessageLen(&tc.msg))
			}
			var got chat.Message
			if !decodeMessage(v, &got) {
				t.Fatalf("decode failed on %x", v)
			}
			checkMessage(t, got, tc.msg)

			// The page decoder agrees with the single decoder.
			var mv msgView
			if !parseMessage(v, &mv) {
				t.Fatal("parseMessage failed")
			}
			page := decodePage([]msgView{mv, mv}, []msgKeyVal{{session: 7, seq: 8}, {session: 7, seq: 9}})
			want := tc.msg
			want.Session, want.Seq = 7, 8
			checkMessage(t, page[0], want)
			want.Seq = 9
			checkMessage(t, page[1], want)
			if len(page[0].Content) > 0 {
				// Neighbours in one page do not share writable memory.
				page[0].Content = append(page[0].Content, '!')
				page[0].Content[0] ^= 0xff
				checkMessage(t, page[1], want)
			}
		})
	}
}

// TestMessageCodecVersions: a message never edited keeps the first
// encoding, byte for byte; an edited one is version 2 and its CreatedAt
// is still where retention reads it.
func TestMessageCodecVersions(t *testing.T) {
	m := chat.Message{App: "a", From: "u", Type: "text", Content: []byte(`{"text":"x"}`), CreatedAt: 42}
	if v := appendMessage(nil, &m); v[0] != recordV1 {
		t.Fatalf("unedited message encoded as version %d", v[0])
	}
	m.EditedAt, m.Edits = 43, 1
	v := appendMessage(nil, &m)
	if v[0] != msgExtV2 {
		t.Fatalf("edited message encoded as version %d", v[0])
	}
	if at, ok := messageCreatedAt(v); !ok || at != 42 {
		t.Fatalf("messageCreatedAt of version 2 = %d, %v", at, ok)
	}
	v[0] = 3
	var got chat.Message
	if decodeMessage(v, &got) {
		t.Fatal("unknown version decoded")
	}
}

func checkMessage(t *testing.T, got, want chat.Message) {
	t.Helper()
	if !bytes.Equal(got.Content, want.Content) {
		t.Fatalf("Content = %q, want %q", got.Content, want.Content)
	}
	got.Content, want.Content = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
}

func TestMessageCodecRejects(t *testing.T) {
	valid := appendMessage(nil, &chat.Message{App: "a", From: "u", Type: "text", Content: []byte(`{"x":1}`), CID: "c", CreatedAt: 5})
	tests := []struct {
		name string
		v    []byte
	}{
		{name: "empty", v: nil},
		{name: "unknown version", v: append([]byte{2}, valid[1:]...)},
		{name: "trailing byte", v: append(bytes.Clone(valid), 0)},
		{name: "length past the end", v: []byte{recordV1, 200, 'a'}},
		{name: "overlong varint", v: append([]byte{recordV1}, bytes.Repeat([]byte{0xff}, 11)...)},
	}
	for i := 1; i < len(valid); i++ {
		tests = append(tests, struct {
			name string
			v    []byte
		}{name: "truncated", v: valid[:i]})
	}
	for _, tc := range tests {
		var m chat.Message
		if decodeMessage(tc.v, &m) {
			t.Errorf("%s: decodeMessage(%x) succeeded", tc.name, tc.v)
		}
	}
}

func FuzzMessageCodec(f *testing.F) {
	f.Add("shop", "u1", "text", "c-1", int64(1766000000123), []byte(`{"text":"hi"}`), []byte{recordV1, 1, 'a', 0, 0, 0, 2, 0})
	f.Add("", "", "", "", int64(-1), []byte(nil), []byte{})
	f.Add("\x00", "\xff\xfe", "t", "", int64(1<<62), []byte{0}, []byte{recordV1, 0x80})
	f.Fuzz(func(t *testing.T, app, from, typ, cid string, created int64, content, raw []byte) {
		m := chat.Message{App: app, From: from, Type: typ, CID: cid, CreatedAt: created, Content: content}
		v := appendMessage([]byte("prefix"), &m)[len("prefix"):]
		if len(v) > maxMessageLen(&m) {
			t.Fatalf("encoded %d bytes, bound %d", len(v), maxMessageLen(&m))
		}
		var got chat.Message
		if !decodeMessage(v, &got) {
			t.Fatalf("decode of a fresh encoding failed: %x", v)
		}
		if len(m.Content) == 0 {
			m.Content = nil
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip: got %+v, want %+v", got, m)
		}
		// Any bytes: never panic; what decodes re-encodes to the same bytes.
		var any chat.Message
		if decodeMessage(raw, &any) {
			if again := appendMessage(nil, &any); !bytes.Equal(again, raw) {
				// Varints have one canonical form each; a decoded
				// non-canonical input is the only allowed difference.
				var back chat.Message
				if !decodeMessage(again, &back) || !reflect.DeepEqual(back, any) {
					t.Fatalf("re-encoding %x gave %x, which decodes to %+v, not %+v", raw, again, back, any)
				}
			}
		}
	})
}

func TestColdRecordCodecs(t *testing.T) {
	t.Run("App", func(t *testing.T) {
		for _, a := range []chat.App{{}, {ID: "shop", Name: "Shop ✓", Secret: "s3cr3t", CreatedAt: 1766000000000},
			{ID: "kept", CreatedAt: 1, RetentionDays: 30}, {ID: "forever", RetentionDays: -1}} {
			var got chat.App
			v := appendApp(nil, &a)
			if !decodeApp(v, &got) || got != a {
				t.Fatalf("App round trip: %+v -> %+v", a, got)
			}
			checkRejectsPrefixes(t, v, func(b []byte) bool { var x chat.App; return decodeApp(b, &x) })
		}
	})
	t.Run("User", func(t *testing.T) {
		for _, u := range []chat.User{{}, {App: "a", UID: "u", Nickname: "李雷", Avatar: "x.png", Extra: []byte(`{"k":1}`), CreatedAt: -1, UpdatedAt: 2}} {
			var got chat.User
			v := appendUser(nil, &u)
			if !decodeUser(v, &got) || !reflect.DeepEqual(got, u) {
				t.Fatalf("User round trip: %+v -> %+v", u, got)
			}
			checkRejectsPrefixes(t, v, func(b []byte) bool { var x chat.User; return decodeUser(b, &x) })
		}
	})
	t.Run("Token", func(t *testing.T) {
		tk := chat.Token{App: "a", UID: "u", CreatedAt: 1, ExpiresAt: 1 << 40}
		var got chat.Token
		v := appendToken(nil, &tk)
		if !decodeToken(v, &got) || got != tk {
			t.Fatalf("Token round trip: %+v -> %+v", tk, got)
		}
		checkRejectsPrefixes(t, v, func(b []byte) bool { var x chat.Token; return decodeToken(b, &x) })
	})
	t.Run("Session", func(t *testing.T) {
		for _, s := range []chat.Session{
			{},
			{App: "a", Kind: chat.KindPrivate, Pair: [2]string{"u1", "u2"}, CreatedAt: 3},
			{App: "a", Kind: chat.KindGroup, Name: "g", Avatar: "v", Owner: "o", CreatedAt: 4,
				LastSeq: 1 << 50, LastAt: 5, LastFrom: "f", LastType: "t", LastPreview: "p"},
		} {
			var got chat.Session
			v := appendSession(nil, &s)
			if !decodeSession(v, &got) || got != s {
				t.Fatalf("Session round trip: %+v -> %+v", s, got)
			}
			var h sessionHead
			if !parseSessionHead(v, &h) || string(h.app) != s.App || h.kind != s.Kind ||
				string(h.pair[0]) != s.Pair[0] || string(h.pair[1]) != s.Pair[1] {
				t.Fatalf("sessionHead of %+v = %+v", s, h)
			}
			off, last, ok := sessionTail(v)
			if !ok || last != s.LastSeq {
				t.Fatalf("sessionTail = %d, %d, %v; want LastSeq %d", off, last, ok, s.LastSeq)
			}
			checkRejectsPrefixes(t, v, func(b []byte) bool { var x chat.Session; return decodeSession(b, &x) })
		}
	})
	t.Run("Member", func(t *testing.T) {
		m := chat.Member{Role: chat.RoleOwner, ReadSeq: 99, JoinedAt: 7}
		var got chat.Member
		v := appendMember(nil, &m)
		if !decodeMember(v, &got) || got != m {
			t.Fatalf("Member round trip: %+v -> %+v", m, got)
		}
		checkRejectsPrefixes(t, v, func(b []byte) bool { var x chat.Member; return decodeMember(b, &x) })
	})
}

// checkRejectsPrefixes checks that every strict prefix of v, v with one
// extra byte and v with another version byte all fail to decode.
func checkRejectsPrefixes(t *testing.T, v []byte, decode func([]byte) bool) {
	t.Helper()
	for i := range len(v) {
		if decode(v[:i]) {
			t.Fatalf("decoded a %d-byte prefix of %x", i, v)
		}
	}
	if decode(append(bytes.Clone(v), 0)) {
		t.Fatalf("decoded %x with a trailing byte", v)
	}
	bad := bytes.Clone(v)
	bad[0] = 0x7f // a version no record has (App has 1 and 2)
	if decode(bad) {
		t.Fatalf("decoded %x with an unknown version", bad)
	}
}

func TestKeysArePrefixFree(t *testing.T) {
	// (app, uid) pairs whose plain concatenations collide get distinct keys,
	// and no user's key is a prefix of another's.
	pairs := [][2]string{{"a", "bc"}, {"ab", "c"}, {"a\x00b", "c"}, {"a", "b\x00c"}, {"", "abc"}, {"abc", ""}, {"a", "b"}}
	for i, p := range pairs {
		ki := appendUserKey(nil, p[0], p[1])
		for j, q := range pairs {
			if i == j {
				continue
			}
			kj := appendUserKey(nil, q[0], q[1])
			if bytes.HasPrefix(kj, ki) {
				t.Errorf("user key of %q is a prefix of the key of %q", p, q)
			}
		}
	}
	// A pair key does not depend on the order of the pair.
	if !bytes.Equal(appendPairKey(nil, "a", [2]string{"x", "y"}), appendPairKey(nil, "a", [2]string{"y", "x"})) {
		t.Error("pair key depends on order")
	}
	// Message keys sort by session, then seq.
	keys := [][]byte{appendMsgKey(nil, 1, 1<<40), appendMsgKey(nil, 2, 0), appendMsgKey(nil, 2, 1), appendMsgKey(nil, 1<<60, 0)}
	for i := 1; i < len(keys); i++ {
		if bytes.Compare(keys[i-1], keys[i]) >= 0 {
			t.Errorf("message key %d does not sort after key %d", i, i-1)
		}
	}
}
