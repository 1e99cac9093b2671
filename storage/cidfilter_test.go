package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"chatd/chat"
)

func TestCIDFilterNoFalseNegativesAndFewFalsePositives(t *testing.T) {
	f := newCIDFilter(1000) // rounds up to 65536; add more to force growth
	const n = 300_000
	for i := 0; i < n; i++ {
		f.add([]byte(fmt.Sprintf("app\x00user%d\x00cid-%d", i%97, i)))
	}
	if parts := len(*f.parts.Load()); parts < 2 {
		t.Fatalf("%d keys in a filter sized for 65536 grew to %d parts", n, parts)
	}
	for i := 0; i < n; i++ {
		if !f.mayContain([]byte(fmt.Sprintf("app\x00user%d\x00cid-%d", i%97, i))) {
			t.Fatalf("false negative for key %d", i)
		}
	}
	fp := 0
	const probes = 100_000
	for i := 0; i < probes; i++ {
		if f.mayContain([]byte(fmt.Sprintf("app\x00user%d\x00other-%d", i%97, i))) {
			fp++
		}
	}
	// ~1 % per part, summed over the parts.
	if rate := float64(fp) / probes; rate > 0.05 {
		t.Fatalf("false-positive rate %.3f", rate)
	}
}

// A cid written before a restart — through the WAL and a checkpoint, or
// replayed from the WAL at open — is still found after it: the filter is
// rebuilt from what is stored.
func TestCIDFoundAfterReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	ctx := context.Background()
	s, err := Open(path, Options{CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, &chat.Batch{
		Sessions: []chat.Session{{ID: 1, App: "a", Kind: chat.KindGroup}},
		Members:  []chat.Member{{Session: 1, UID: "u", Role: chat.RoleOwner}},
	}); err != nil {
		t.Fatal(err)
	}
	msg := func(seq uint64, cid string) chat.Message {
		return chat.Message{Session: 1, Seq: seq, App: "a", From: "u", Type: "text", CID: cid, Content: json.RawMessage(`{"text":"x"}`)}
	}
	if err := s.Apply(ctx, &chat.Batch{Messages: []chat.Message{msg(1, "in-bbolt")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, &chat.Batch{Messages: []chat.Message{msg(2, "only-in-wal")}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CID(ctx, "a", "u", "never"); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("unknown cid: %v", err)
	}
	// Copy the files as a crash would leave them (no Close, so the WAL is
	// replayed on open), then reopen the copy.
	crashed := copyStore(t, s)
	s.Close()
	r := reopen(t, crashed)
	for seq, cid := range map[uint64]string{1: "in-bbolt", 2: "only-in-wal"} {
		id, got, err := r.CID(ctx, "a", "u", cid)
		if err != nil || id != 1 || got != seq {
			t.Fatalf("after reopen, cid %q = %d/%d, %v; want 1/%d", cid, id, got, err, seq)
		}
	}
	if _, _, err := r.CID(ctx, "a", "u", "never"); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("unknown cid after reopen: %v", err)
	}
}
