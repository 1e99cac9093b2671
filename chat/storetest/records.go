package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"chatd/chat"
)

// recKeys lists the keys of rs as strings, for comparisons.
func recKeys(rs []chat.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.Key)
	}
	return out
}

func testRecords(t *testing.T, s chat.Store) {
	ctx := context.Background()
	if _, err := s.Record(ctx, "svc.conv", []byte("a")); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("Record on an empty store: %v, want ErrNotFound", err)
	}
	if rs, err := s.ScanRecords(ctx, "svc.conv", nil, nil, 0, false); err != nil || len(rs) != 0 {
		t.Fatalf("ScanRecords on an empty store: %v, %v", rs, err)
	}

	var b chat.Batch
	for _, k := range []string{"b1", "a2", "a1", "c", "a3", "b2"} {
		b.Records = append(b.Records, chat.Record{Kind: "svc.conv", Key: []byte(k), Value: []byte("v" + k)})
	}
	// The same keys in another kind stay apart; an empty value is kept.
	b.Records = append(b.Records, chat.Record{Kind: "consult", Key: []byte("a1"), Value: []byte{}})
	apply(t, s, &b)

	v, err := s.Record(ctx, "svc.conv", []byte("a2"))
	if err != nil || string(v) != "va2" {
		t.Fatalf("Record a2 = %q, %v", v, err)
	}
	if v, err := s.Record(ctx, "consult", []byte("a1")); err != nil || len(v) != 0 {
		t.Fatalf("Record consult/a1 = %q, %v; want an empty value", v, err)
	}
	if _, err := s.Record(ctx, "consult", []byte("a2")); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("Record consult/a2: %v, want ErrNotFound", err)
	}
	// The caller owns what it gets.
	v[0] = 'X'
	if v, _ := s.Record(ctx, "svc.conv", []byte("a2")); string(v) != "va2" {
		t.Fatalf("a returned value aliases the store: %q", v)
	}

	cases := []struct {
		name          string
		prefix, after string
		nilAfter      bool
		limit         int
		reverse       bool
		want          []string
	}{
		{name: "all", nilAfter: true, want: []string{"a1", "a2", "a3", "b1", "b2", "c"}},
		{name: "all reverse", nilAfter: true, reverse: true, want: []string{"c", "b2", "b1", "a3", "a2", "a1"}},
		{name: "prefix", prefix: "a", nilAfter: true, want: []string{"a1", "a2", "a3"}},
		{name: "prefix reverse", prefix: "a", nilAfter: true, reverse: true, want: []string{"a3", "a2", "a1"}},
		{name: "prefix limit", prefix: "a", nilAfter: true, limit: 2, want: []string{"a1", "a2"}},
		{name: "after, existing key", prefix: "a", after: "a1", want: []string{"a2", "a3"}},
		{name: "after, missing key", after: "a25", want: []string{"a3", "b1", "b2", "c"}},
		{name: "after before the prefix", prefix: "b", after: "a", want: []string{"b1", "b2"}},
		{name: "after past the prefix", prefix: "a", after: "b", want: []string{}},
		{name: "reverse after", prefix: "a", after: "a3", reverse: true, want: []string{"a2", "a1"}},
		{name: "reverse after past the prefix", prefix: "a", after: "zz", reverse: true, want: []string{"a3", "a2", "a1"}},
		{name: "reverse after, missing key, limit", after: "b15", limit: 2, reverse: true, want: []string{"b1", "a3"}},
		{name: "reverse after before the prefix", prefix: "b", after: "a9", reverse: true, want: []string{}},
		{name: "prefix with no records", prefix: "d", nilAfter: true, want: []string{}},
	}
	for _, tc := range cases {
		var after []byte
		if !tc.nilAfter {
			after = []byte(tc.after)
		}
		rs, err := s.ScanRecords(ctx, "svc.conv", []byte(tc.prefix), after, tc.limit, tc.reverse)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := recKeys(rs); !slices.Equal(got, tc.want) {
			t.Errorf("%s: keys %q, want %q", tc.name, got, tc.want)
		}
		for _, r := range rs {
			if r.Kind != "svc.conv" || string(r.Value) != "v"+string(r.Key) {
				t.Errorf("%s: record %+v", tc.name, r)
			}
		}
	}

	// Replace, delete, and a put and delete of one key in one batch.
	apply(t, s, &chat.Batch{
		Records: []chat.Record{
			{Kind: "svc.conv", Key: []byte("a1"), Value: []byte("new")},
			{Kind: "svc.conv", Key: []byte("d"), Value: []byte("gone")},
		},
		DelRecords: []chat.RecordKey{
			{Kind: "svc.conv", Key: []byte("b1")},
			{Kind: "svc.conv", Key: []byte("d")},
			{Kind: "svc.conv", Key: []byte("never")}, // missing: no error
			{Kind: "nokind", Key: []byte("x")},       // missing kind: no error
		},
	})
	if v, _ := s.Record(ctx, "svc.conv", []byte("a1")); string(v) != "new" {
		t.Fatalf("replaced a1 = %q", v)
	}
	rs, err := s.ScanRecords(ctx, "svc.conv", nil, nil, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := recKeys(rs), []string{"a1", "a2", "a3", "b2", "c"}; !slices.Equal(got, want) {
		t.Fatalf("after delete: %q, want %q", got, want)
	}
}

// testRecordKeys checks binary keys (big-endian numbers, 0x00 and 0xff
// bytes) sort and scan bytewise, and that invalid kinds and keys fail the
// whole batch.
func testRecordKeys(t *testing.T, s chat.Store) {
	ctx := context.Background()
	var b chat.Batch
	for _, n := range []uint64{0, 1, 255, 256, 1 << 40, 1<<64 - 1} {
		k := []byte{0xff, 0x00}
		k = append(k, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		b.Records = append(b.Records, chat.Record{Kind: "k.bin", Key: k, Value: []byte(fmt.Sprint(n))})
	}
	apply(t, s, &b)
	rs, err := s.ScanRecords(ctx, "k.bin", []byte{0xff, 0x00}, nil, 0, false)
	if err != nil || len(rs) != 6 {
		t.Fatalf("scan: %d records, %v", len(rs), err)
	}
	if !slices.IsSortedFunc(rs, func(a, b chat.Record) int { return bytes.Compare(a.Key, b.Key) }) {
		t.Fatal("records not in key order")
	}
	if got := string(rs[5].Value); got != fmt.Sprint(uint64(1<<64-1)) {
		t.Fatalf("last = %s", got)
	}
	// Reverse from the end of a prefix that is all 0xff bytes.
	rs, err = s.ScanRecords(ctx, "k.bin", []byte{0xff}, nil, 2, true)
	if err != nil || len(rs) != 2 || string(rs[0].Value) != fmt.Sprint(uint64(1<<64-1)) || string(rs[1].Value) != fmt.Sprint(uint64(1<<40)) {
		t.Fatalf("reverse scan of an 0xff prefix: %+v, %v", rs, err)
	}

	bad := []chat.Batch{
		{Records: []chat.Record{{Kind: "Bad Kind", Key: []byte("k"), Value: []byte("v")}}},
		{Records: []chat.Record{{Kind: "", Key: []byte("k")}}},
		{Records: []chat.Record{{Kind: "ok", Key: nil, Value: []byte("v")}}},
		{Records: []chat.Record{{Kind: "ok", Key: make([]byte, chat.MaxRecordKey+1)}}},
		{DelRecords: []chat.RecordKey{{Kind: "ok", Key: nil}}},
	}
	for i := range bad {
		// A valid record rides along and must not be stored.
		bad[i].Records = append(bad[i].Records, chat.Record{Kind: "ok", Key: []byte("valid"), Value: []byte("v")})
		if err := s.Apply(ctx, &bad[i]); err == nil {
			t.Errorf("bad batch %d: Apply succeeded", i)
		}
		if _, err := s.Record(ctx, "ok", []byte("valid")); !errors.Is(err, chat.ErrNotFound) {
			t.Fatalf("bad batch %d: the valid record of a failed batch was stored (%v)", i, err)
		}
	}
}

// testRecordsOverBatches changes records over several batches and checks
// that the last change of each key wins: a put replaced or deleted by a
// later batch, a delete undone by a later put. A batch with an app sits
// between the rounds: in storage.Bolt it checkpoints first (records of
// hot batches are in the write-ahead log until a checkpoint), so the
// scans merge keys from both sides, in both directions.
func testRecordsOverBatches(t *testing.T, s chat.Store) {
	ctx := context.Background()
	put := func(k, v string) chat.Record { return chat.Record{Kind: "svc.q", Key: []byte(k), Value: []byte(v)} }
	del := func(k string) chat.RecordKey { return chat.RecordKey{Kind: "svc.q", Key: []byte(k)} }
	apply(t, s, &chat.Batch{Records: []chat.Record{put("b", "1"), put("d", "1"), put("f", "1"), put("h", "1")}})
	apply(t, s, &chat.Batch{Apps: []chat.App{{ID: "rec-app", Name: "r", Secret: "s", CreatedAt: 1}}})
	apply(t, s, &chat.Batch{
		Records:    []chat.Record{put("a", "2"), put("d", "2"), put("e", "2"), put("g", "2")},
		DelRecords: []chat.RecordKey{del("f"), del("g")},
	})
	apply(t, s, &chat.Batch{Records: []chat.Record{put("f", "3"), put("i", "3")}, DelRecords: []chat.RecordKey{del("b"), del("e")}})
	want := map[string]string{"a": "2", "d": "2", "f": "3", "h": "1", "i": "3"}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"} {
		v, err := s.Record(ctx, "svc.q", []byte(k))
		if w, ok := want[k]; ok {
			if err != nil || string(v) != w {
				t.Errorf("Record %s = %q, %v; want %q", k, v, err, w)
			}
		} else if !errors.Is(err, chat.ErrNotFound) {
			t.Errorf("Record %s = %q, %v; want ErrNotFound", k, v, err)
		}
	}
	cases := []struct {
		after   string
		limit   int
		reverse bool
		want    []string
	}{
		{want: []string{"a", "d", "f", "h", "i"}},
		{reverse: true, want: []string{"i", "h", "f", "d", "a"}},
		{limit: 2, want: []string{"a", "d"}},
		{limit: 2, reverse: true, want: []string{"i", "h"}},
		{after: "b", limit: 2, want: []string{"d", "f"}},
		{after: "g", limit: 2, reverse: true, want: []string{"f", "d"}},
		{after: "f", reverse: true, want: []string{"d", "a"}},
		{after: "e", want: []string{"f", "h", "i"}},
	}
	for _, tc := range cases {
		var after []byte
		if tc.after != "" {
			after = []byte(tc.after)
		}
		rs, err := s.ScanRecords(ctx, "svc.q", nil, after, tc.limit, tc.reverse)
		if err != nil {
			t.Fatal(err)
		}
		if got := recKeys(rs); !slices.Equal(got, tc.want) {
			t.Errorf("scan after %q limit %d reverse %v: %q, want %q", tc.after, tc.limit, tc.reverse, got, tc.want)
		}
		for _, r := range rs {
			if string(r.Value) != want[string(r.Key)] {
				t.Errorf("scan: %s = %q, want %q", r.Key, r.Value, want[string(r.Key)])
			}
		}
	}
}
