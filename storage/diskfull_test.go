package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"chatd/chat"
	"chatd/internal/testfs"
)

// bigBatch is one hot batch of message seq for sessions 1..n, each with
// size bytes of content: fills a small disk fast.
func bigBatch(n int, seq uint64, size int) *chat.Batch {
	b := p2pBatch(n, seq)
	pad := strings.Repeat("x", size)
	for i := range b.Messages {
		b.Messages[i].Type = "text" + pad // checkSessions checks the content
	}
	return b
}

// TestDiskFull runs a store on an 8 MiB tmpfs, fills the rest of it, and
// checks what the issue asks: every failed Apply wraps chat.ErrDiskFull
// (never the broken log that needed a restart), reads go on, checkpoints
// (which rotate the WAL and grow bbolt) fail and are retried rather than
// breaking anything, writes resume once space is freed without a restart,
// and every Apply that returned nil is there after a reopen.
func TestDiskFull(t *testing.T) {
	dir := testfs.Tmpfs(t, 8<<20)
	path := filepath.Join(dir, "chat.db")
	s, err := Open(path, Options{CheckpointInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const sessions = 4
	setupSessions(t, s, sessions)
	ctx := context.Background()

	seq := uint64(0)
	apply := func() error {
		err := s.Apply(ctx, bigBatch(sessions, seq+1, 2000))
		if err == nil {
			seq++
		}
		return err
	}
	for range 20 {
		if err := apply(); err != nil {
			t.Fatal(err)
		}
	}
	filler := testfs.Fill(t, dir, "filler", 64<<20)

	// The WAL has blocks grown ahead of its records: Applies go on until
	// they are used up, then fail for lack of space.
	var full error
	for range 5000 {
		if full = apply(); full != nil {
			break
		}
	}
	if full == nil {
		t.Fatal("5000 Applies on a full 8 MiB disk all succeeded")
	}
	if !errors.Is(full, chat.ErrDiskFull) || !s.DiskFull() {
		t.Fatalf("Apply on a full disk: %v (DiskFull %v), want chat.ErrDiskFull", full, s.DiskFull())
	}
	// Checkpoints keep failing meanwhile (nothing can be written to
	// bbolt), and forced ones say why.
	if err := s.checkpoint(); err != nil && !isDiskFull(err) {
		t.Fatalf("checkpoint on a full disk: %v", err)
	}
	for i := range 50 {
		if err := apply(); err == nil {
			continue // a checkpoint may have freed a WAL file's worth
		} else if !errors.Is(err, chat.ErrDiskFull) {
			t.Fatalf("Apply %d on a full disk: %v, want chat.ErrDiskFull", i, err)
		}
		time.Sleep(time.Millisecond)
	}
	// Reads are served throughout.
	checkSessions(t, s, sessions, seq)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// No restart: the next Applies succeed and checkpoints catch up.
	for range 10 {
		if err := apply(); err != nil {
			t.Fatalf("Apply after freeing space: %v", err)
		}
	}
	if s.DiskFull() {
		t.Fatal("DiskFull still set after a successful Apply")
	}
	settle(t, s)
	checkSessions(t, s, sessions, seq)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c := reopen(t, path)
	checkSessions(t, c, sessions, seq)
}

// TestRecoverWithLittleSpace crashes a store whose WAL holds ~3 MiB of
// messages and reopens it on a disk with less free than that: Open fails
// with chat.ErrDiskFull, saying how much it needs and has, and keeps the
// log; once the space is freed, Open replays it with every message.
func TestRecoverWithLittleSpace(t *testing.T) {
	dir := testfs.Tmpfs(t, 16<<20)
	s := openTempOpt(t, Options{CheckpointInterval: -1})
	const sessions = 200
	setupSessions(t, s, sessions)
	settle(t, s)
	const rounds = 60
	for seq := uint64(1); seq <= rounds; seq++ {
		mustApply(t, s, bigBatch(sessions, seq, 200))
	}
	// The crash: the files as they are, WAL and all, on the small disk.
	src := copyStore(t, s)
	path := filepath.Join(dir, "chat.db")
	for _, suffix := range []string{"", walFrozenSuffix, walSuffix} {
		data, err := os.ReadFile(src + suffix)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path+suffix, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path + walSuffix)
	if err != nil {
		t.Fatal(err)
	}
	filler := testfs.Fill(t, dir, "filler", 64<<20)
	// Leave about half the log's size free.
	f, err := os.OpenFile(filler, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	if err := f.Truncate(st.Size() - fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	f.Close()

	_, err = Open(path, Options{CheckpointInterval: -1, LockTimeout: time.Second})
	if !errors.Is(err, chat.ErrDiskFull) || !strings.Contains(err.Error(), "MiB free in "+dir) {
		t.Fatalf("reopen with half the log's size free: %v; want chat.ErrDiskFull saying how much is needed", err)
	}
	if after, err := os.Stat(path + walSuffix); err != nil || after.Size() != fi.Size() {
		t.Fatalf("the log after a failed replay: %v, %v; want it kept as it was", after, err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c, err := Open(path, Options{CheckpointInterval: -1})
	if err != nil {
		t.Fatalf("reopen after freeing space: %v", err)
	}
	defer c.Close()
	ctx := context.Background()
	for k := range sessions {
		ms, err := c.Messages(ctx, chat.SessionID(k+1), 0, ^uint64(0), 0, false)
		if err != nil || len(ms) != rounds {
			t.Fatalf("session %d: %d messages, %v; want %d", k+1, len(ms), err, rounds)
		}
	}
}

// TestFailedCommitStopsWrites: a bbolt commit that fails for another
// reason than a full disk (an I/O error, maybe from the fsync of its meta
// page) stops every later write, since bbolt would reuse pages a meta
// page on its way to the disk may name; acknowledged writes are all in
// the WAL, and a reopen has every one of them. A commit that fails for
// lack of space does not (TestDiskFull).
func TestFailedCommitStopsWrites(t *testing.T) {
	s := openTempOpt(t, Options{CheckpointInterval: -1})
	const sessions = 3
	setupSessions(t, s, sessions)
	for seq := uint64(1); seq <= 3; seq++ {
		mustApply(t, s, p2pBatch(sessions, seq))
	}
	settle(t, s)
	mustApply(t, s, p2pBatch(sessions, 4))

	eio := error(syscall.EIO)
	s.failCommits.Store(&eio)
	if err := s.checkpoint(); !errors.Is(err, errDBFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("checkpoint with a failing commit: %v", err)
	}
	s.failCommits.Store(nil)
	if err := s.Apply(context.Background(), p2pBatch(sessions, 5)); !errors.Is(err, errDBFailed) || errors.Is(err, chat.ErrDiskFull) {
		t.Fatalf("Apply after a failed commit: %v, want errDBFailed", err)
	}
	if err := s.checkpoint(); !errors.Is(err, errDBFailed) {
		t.Fatalf("checkpoint after a failed commit: %v, want errDBFailed", err)
	}
	// Everything acknowledged is still read, and is there after a reopen
	// (Close cannot checkpoint: it keeps the WAL for the replay).
	checkSessions(t, s, sessions, 4)
	path := s.path
	if err := s.Close(); err == nil {
		t.Fatal("Close checkpointed on a failed database")
	}
	c := reopen(t, path)
	checkSessions(t, c, sessions, 4)
	mustApply(t, c, p2pBatch(sessions, 5))
	checkSessions(t, c, sessions, 5)
}
