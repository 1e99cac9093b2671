package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"chatd/chat"
	"chatd/chat/storetest"
)

func openTemp(t testing.TB) *Bolt {
	t.Helper()
	return openTempOpt(t, Options{})
}

// openTempOpt opens a store in a new temp folder, closed at cleanup.
func openTempOpt(t testing.TB, opt Options) *Bolt {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "chat.db"), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// checkpointModes run the contract with checkpoints so frequent that reads
// mostly hit bbolt (and often race a checkpoint), and with none on a
// timer, so reads hit the overlay.
var checkpointModes = []struct {
	name string
	opt  Options
}{
	{name: "default", opt: Options{}},
	{name: "checkpoint=1ms", opt: Options{CheckpointInterval: time.Millisecond}},
	{name: "checkpoint=never", opt: Options{CheckpointInterval: -1}},
}

func TestConformance(t *testing.T) {
	for _, mode := range checkpointModes {
		t.Run(mode.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) chat.Store { return openTempOpt(t, mode.opt) })
		})
	}
}

func TestPersistence(t *testing.T) {
	for _, mode := range checkpointModes {
		t.Run(mode.name, func(t *testing.T) {
			storetest.RunPersistence(t, func(t *testing.T, dir string) chat.Store {
				s, err := Open(filepath.Join(dir, "chat.db"), mode.opt)
				if err != nil {
					t.Fatal(err)
				}
				return s
			})
		})
	}
}

func TestOpenCreatesFolderAndFileModes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "chat.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Path() != path {
		t.Fatalf("Path() = %q, want %q", s.Path(), path)
	}
	if runtime.GOOS == "windows" {
		return // no unix modes
	}
	for _, tc := range []struct {
		name string
		path string
		want os.FileMode
	}{
		{name: "folder", path: filepath.Dir(path), want: 0o700 | os.ModeDir},
		{name: "file", path: path, want: 0o600},
	} {
		fi, err := os.Stat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != tc.want {
			t.Errorf("%s mode = %v, want %v", tc.name, fi.Mode(), tc.want)
		}
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	start := time.Now()
	s2, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
	elapsed := time.Since(start)
	if err == nil {
		s2.Close()
		t.Fatal("second Open of an open file succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: err = %v, want an error wrapping ErrLocked", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("second Open took %v with a 200ms lock timeout", elapsed)
	}

	// Once the holder closes, the file opens again.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	s3.Close()
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	setRaw(t, s, bMeta, keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion+1))
	s.Close()

	_, err = Open(path, Options{})
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open of a newer-schema file: err = %v, want an error wrapping ErrNewerSchema", err)
	}
	for _, want := range []string{strconv.Itoa(SchemaVersion + 1), strconv.Itoa(SchemaVersion), path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// The refused file was not touched: it still says the newer schema.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(keySchema); binary.BigEndian.Uint32(v) != SchemaVersion+1 {
			t.Errorf("schema after the refused Open = %d", binary.BigEndian.Uint32(v))
		}
		return nil
	})
}

// A schema-1 file (with its store-wide cid index) opens as schema 2: the
// index is dropped, the messages stay.
func TestOpenUpgradesSchema1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chat.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := chat.Message{Session: 1, Seq: 1, App: "a", From: "u", Type: "text", Content: []byte(`{"text":"hi"}`), CID: "c1", CreatedAt: 5}
	if err := s.Apply(ctx, &chat.Batch{
		Sessions: []chat.Session{{ID: 1, App: "a", Kind: chat.KindGroup}},
		Messages: []chat.Message{m},
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Make it what schema 1 wrote.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bCIDsV1)
		if err != nil {
			return err
		}
		if err := b.Put([]byte("\x01a\x01u\x02c1"), appendMsgKey(nil, 1, 1)); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, 1))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("Open of a schema-1 file: %v", err)
	}
	ms, err := s.Messages(ctx, 1, 1, 1, 1, false)
	if err != nil || len(ms) != 1 || ms[0].CID != "c1" {
		t.Fatalf("message after the upgrade = %+v, %v", ms, err)
	}
	s.Close()
	db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(keySchema); binary.BigEndian.Uint32(v) != SchemaVersion {
			t.Errorf("schema after the upgrade = %d, want %d", binary.BigEndian.Uint32(v), SchemaVersion)
		}
		if tx.Bucket(bCIDsV1) != nil {
			t.Error("the schema-1 cid index is still there")
		}
		return nil
	})
}

func TestOpenRefusesForeignFile(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		{name: "bbolt file of another program", setup: func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("widgets")); return err })
			db.Close()
		}},
		{name: "not a bbolt file", setup: func(t *testing.T, path string) {
			if err := os.WriteFile(path, bytes.Repeat([]byte("chat"), 4096), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "meta without a valid schema", setup: func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			db.Update(func(tx *bolt.Tx) error {
				b, _ := tx.CreateBucket(bMeta)
				return b.Put(keySchema, []byte{1})
			})
			db.Close()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "chat.db")
			tc.setup(t, path)
			s, err := Open(path, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestCloseTwice(t *testing.T) {
	s := openTemp(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// setRaw writes a raw value, bypassing the codecs.
func setRaw(t *testing.T, s *Bolt, bucket, key, val []byte) {
	t.Helper()
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(key, val) }); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptRecords checks that a value this build cannot decode is an
// error wrapping ErrCorrupt, not a panic or a zero value.
func TestCorruptRecords(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	defer s.Close()
	if err := s.Apply(ctx, &chat.Batch{
		Sessions: []chat.Session{{ID: 1, App: "a", Kind: chat.KindGroup}},
		Members:  []chat.Member{{Session: 1, UID: "u"}},
	}); err != nil {
		t.Fatal(err)
	}
	garbage := []byte{9, 9, 9}
	setRaw(t, s, bApps, []byte("a"), garbage)
	setRaw(t, s, bUsers, appendUserKey(nil, "a", "u"), garbage)
	h := [32]byte{1}
	setRaw(t, s, bTokens, h[:], garbage)
	setRaw(t, s, bSessions, appendU64(nil, 2), garbage)
	setRaw(t, s, bMembers, appendMemberKey(nil, 2, "u"), garbage)
	setRaw(t, s, bMsgs, appendMsgKey(nil, 2, 1), garbage)
	setRaw(t, s, bPairs, appendPairKey(nil, "a", [2]string{"u", "v"}), garbage)

	tests := []struct {
		name string
		call func() error
	}{
		{name: "App", call: func() error { _, err := s.App(ctx, "a"); return err }},
		{name: "Apps", call: func() error { _, err := s.Apps(ctx); return err }},
		{name: "User", call: func() error { _, err := s.User(ctx, "a", "u"); return err }},
		{name: "Token", call: func() error { _, err := s.Token(ctx, h); return err }},
		{name: "Session", call: func() error { _, err := s.Session(ctx, 2); return err }},
		{name: "Member", call: func() error { _, err := s.Member(ctx, 2, "u"); return err }},
		{name: "Members", call: func() error { _, err := s.Members(ctx, 2); return err }},
		{name: "Messages", call: func() error { _, err := s.Messages(ctx, 2, 0, 10, 0, false); return err }},
		{name: "PrivateSession", call: func() error { _, err := s.PrivateSession(ctx, "a", "v", "u"); return err }},
		{name: "Apply replacing a session", call: func() error {
			return s.Apply(ctx, &chat.Batch{Sessions: []chat.Session{{ID: 2, App: "a", Kind: chat.KindGroup}}})
		}},
		{name: "Apply deleting a token", call: func() error {
			return s.Apply(ctx, &chat.Batch{DelTokens: [][32]byte{h}})
		}},
	}
	for _, tc := range tests {
		if err := tc.call(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s on a corrupt record: err = %v, want an error wrapping ErrCorrupt", tc.name, err)
		}
	}

	// A summary or read mark goes to the WAL without reading bbolt; the
	// checkpoint skips it on a corrupt record instead of failing for
	// good, and the record stays corrupt.
	if err := s.Apply(ctx, &chat.Batch{
		Messages:  []chat.Message{{Session: 1, Seq: 1, App: "a", From: "u", Type: "text"}},
		Summaries: []chat.Summary{{Session: 2, Seq: 5}},
		Reads:     []chat.ReadMark{{Session: 2, UID: "u", Seq: 5}},
	}); err != nil {
		t.Fatalf("hot Apply touching corrupt records: %v", err)
	}
	if err := s.checkpoint(); err != nil {
		t.Fatalf("checkpoint over corrupt records: %v", err)
	}
	if _, err := s.Session(ctx, 2); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Session after checkpoint: err = %v, want ErrCorrupt", err)
	}
	if _, err := s.Member(ctx, 2, "u"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Member after checkpoint: err = %v, want ErrCorrupt", err)
	}
	if ms, err := s.Messages(ctx, 1, 1, 1, 0, false); err != nil || len(ms) != 1 {
		t.Errorf("Messages of the healthy session after checkpoint = %d, %v; want 1", len(ms), err)
	}
}

func TestBackup(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	defer s.Close()
	apply := func(b *chat.Batch) {
		t.Helper()
		if err := s.Apply(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	apply(&chat.Batch{
		Apps:     []chat.App{{ID: "a", Name: "A"}},
		Sessions: []chat.Session{{ID: 1, App: "a", Kind: chat.KindGroup}},
		Members:  []chat.Member{{Session: 1, UID: "u"}},
	})

	// Writers keep committing batches of 10 messages with their summary
	// while the backup runs; the copy must hold whole batches only.
	const batches = 60
	done := make(chan error, 1)
	half := make(chan struct{})
	go func() {
		var b chat.Batch
		for i := range batches {
			b.Reset()
			for j := range 10 {
				seq := uint64(i*10 + j + 1)
				b.Messages = append(b.Messages, chat.Message{Session: 1, Seq: seq, App: "a", From: "u", Type: "text",
					Content: bytes.Repeat([]byte("x"), 500)})
			}
			b.Summaries = append(b.Summaries, chat.Summary{Session: 1, Seq: uint64(i*10 + 10)})
			if err := s.Apply(ctx, &b); err != nil {
				close(half)
				done <- err
				return
			}
			if i == batches/2 {
				close(half)
			}
		}
		done <- nil
	}()
	<-half

	backup := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(backup)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Backup(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(backup)
	if err != nil || fi.Size() != n {
		t.Fatalf("backup file is %d bytes, %v; Backup reported %d", fi.Size(), err, n)
	}

	c, err := Open(backup, Options{})
	if err != nil {
		t.Fatalf("open backup: %v", err)
	}
	defer c.Close()
	if a, err := c.App(ctx, "a"); err != nil || a.Name != "A" {
		t.Fatalf("backup App = %+v, %v", a, err)
	}
	if _, err := c.Member(ctx, 1, "u"); err != nil {
		t.Fatalf("backup Member: %v", err)
	}
	sess, err := c.Session(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := c.Messages(ctx, 1, 0, ^uint64(0), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(ms)) != sess.LastSeq || len(ms)%10 != 0 {
		t.Fatalf("backup holds %d messages and LastSeq %d: not a consistent snapshot", len(ms), sess.LastSeq)
	}
	t.Logf("backup caught %d of %d batches", len(ms)/10, batches)
}
