package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/chat"
	"chatd/chat/memstore"
)

func TestWALRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		b    chat.Batch
	}{
		{name: "messages only", b: chat.Batch{Messages: []chat.Message{
			{Session: 1, Seq: 1, App: "a", From: "u", Type: "text", Content: []byte(`{"t":1}`), CID: "c1", CreatedAt: 17},
			{Session: 1<<40 + 3, Seq: 1 << 50, App: "", From: "ü", Type: "", CreatedAt: -5},
		}}},
		{name: "summaries and reads", b: chat.Batch{
			Summaries: []chat.Summary{{Session: 9, Seq: 4, At: 100, From: "u", Type: "text", Preview: "hi"}},
			Reads:     []chat.ReadMark{{Session: 9, UID: "v", Seq: 3}, {Session: 10, UID: "", Seq: 0}},
		}},
		{name: "big content", b: chat.Batch{Messages: []chat.Message{
			{Session: 2, Seq: 7, App: "a", From: "u", Type: "file", Content: make([]byte, 300_000)},
		}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := appendWALRecord(nil, &tc.b)
			path := filepath.Join(t.TempDir(), "w")
			if err := os.WriteFile(path, append(rec, rec...), 0o600); err != nil {
				t.Fatal(err)
			}
			var got chat.Batch
			n, err := readWAL(path, &got)
			if err != nil || n != 2 {
				t.Fatalf("readWAL = %d records, %v; want 2", n, err)
			}
			want := tc.b
			want.Messages = append(append([]chat.Message(nil), tc.b.Messages...), tc.b.Messages...)
			want.Summaries = append(append([]chat.Summary(nil), tc.b.Summaries...), tc.b.Summaries...)
			want.Reads = append(append([]chat.ReadMark(nil), tc.b.Reads...), tc.b.Reads...)
			for i := range want.Messages {
				if len(want.Messages[i].Content) == 0 {
					want.Messages[i].Content = nil
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// p2pBatch is one hot batch: message seq of sessions 1..n, each with a
// cid, a summary and a read mark.
func p2pBatch(n int, seq uint64) *chat.Batch {
	b := &chat.Batch{}
	for k := range n {
		id := chat.SessionID(k + 1)
		b.Messages = append(b.Messages, chat.Message{Session: id, Seq: seq, App: "app", From: "u" + strconv.Itoa(2*k),
			Type: "text", Content: []byte(`"m` + strconv.FormatUint(seq, 10) + `"`), CID: "c" + strconv.FormatUint(seq, 10),
			CreatedAt: int64(seq)})
		b.Summaries = append(b.Summaries, chat.Summary{Session: id, Seq: seq, At: int64(seq), From: "u" + strconv.Itoa(2*k), Type: "text"})
		b.Reads = append(b.Reads, chat.ReadMark{Session: id, UID: "u" + strconv.Itoa(2*k), Seq: seq})
	}
	return b
}

// checkSessions asserts that sessions 1..n hold exactly seqs 1..want (per
// p2pBatch) through every read that merges the overlay.
func checkSessions(t *testing.T, s *Bolt, n int, want uint64) {
	t.Helper()
	ctx := context.Background()
	for k := range n {
		id := chat.SessionID(k + 1)
		ms, err := s.Messages(ctx, id, 0, ^uint64(0), 0, false)
		if err != nil {
			t.Fatal(err)
		}
		if uint64(len(ms)) != want {
			t.Fatalf("session %d: %d messages, want %d", id, len(ms), want)
		}
		for i, m := range ms {
			if m.Seq != uint64(i+1) || string(m.Content) != `"m`+strconv.Itoa(i+1)+`"` {
				t.Fatalf("session %d message %d = seq %d %s", id, i, m.Seq, m.Content)
			}
		}
		if want == 0 {
			continue
		}
		sess, err := s.Session(ctx, id)
		if err != nil || sess.LastSeq != want {
			t.Fatalf("session %d: LastSeq %d, %v; want %d", id, sess.LastSeq, err, want)
		}
		mem, err := s.Member(ctx, id, "u"+strconv.Itoa(2*k))
		if err != nil || mem.ReadSeq != want {
			t.Fatalf("session %d: ReadSeq %d, %v; want %d", id, mem.ReadSeq, err, want)
		}
		ms, err = s.Messages(ctx, id, want, want, 1, false)
		if err != nil || len(ms) != 1 || ms[0].CID != "c"+strconv.FormatUint(want, 10) {
			t.Fatalf("session %d: message %d = %+v, %v; want cid c%d", id, want, ms, err, want)
		}
	}
}

// TestReadsDuringCheckpoint has a writer appending, a checkpointer
// looping and readers asserting that every session reads as seqs 1..N
// with no gap or duplicate, whichever of bbolt, the frozen overlay and
// the active one holds them.
func TestReadsDuringCheckpoint(t *testing.T) {
	s := openTempOpt(t, Options{CheckpointInterval: -1, NoSync: true})
	const sessions, rounds = 8, 400
	setupSessions(t, s, sessions)
	ctx := context.Background()

	var written atomic.Uint64 // every session holds seqs 1..written
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	wg.Add(1)
	go func() { // checkpointer
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.checkpoint(); err != nil {
				errs <- err
				return
			}
		}
	}()
	for r := range 3 {
		wg.Add(1)
		go func() { // reader
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				lo := written.Load()
				id := chat.SessionID(i%sessions + 1)
				var ms []chat.Message
				var err error
				switch r {
				case 0:
					ms, err = s.Messages(ctx, id, 0, ^uint64(0), 0, false)
				case 1:
					ms, err = s.Messages(ctx, id, 1, ^uint64(0), 0, true)
				default:
					ms, err = s.Messages(ctx, id, 0, ^uint64(0), 5, true)
				}
				if err != nil {
					errs <- err
					return
				}
				if r == 2 {
					if lo >= 5 && (len(ms) != 5 || ms[4].Seq < lo) {
						errs <- errors.New("newest page missed messages: " + strconv.Itoa(len(ms)))
						return
					}
					for j := 1; j < len(ms); j++ {
						if ms[j].Seq != ms[j-1].Seq+1 {
							errs <- errors.New("newest page not contiguous")
							return
						}
					}
					continue
				}
				if uint64(len(ms)) < lo {
					errs <- errors.New("read " + strconv.Itoa(len(ms)) + " messages, " + strconv.FormatUint(lo, 10) + " were acknowledged")
					return
				}
				for j, m := range ms {
					if m.Seq != uint64(j+1) {
						errs <- errors.New("gap or duplicate at index " + strconv.Itoa(j) + ": seq " + strconv.FormatUint(m.Seq, 10))
						return
					}
				}
				sess, err := s.Session(ctx, id)
				if err != nil || sess.LastSeq < lo {
					errs <- errors.New("summary rolled back")
					return
				}
			}
		}()
	}
	for seq := uint64(1); seq <= rounds; seq++ {
		if err := s.Apply(ctx, p2pBatch(sessions, seq)); err != nil {
			t.Fatal(err)
		}
		written.Store(seq)
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	checkSessions(t, s, sessions, rounds)
}

// copyStore copies the data file and any WAL files of s into a new folder
// while s stays open, as a crash would leave them, and returns the copy's
// data file path. The caller makes sure no checkpoint is writing.
func copyStore(t *testing.T, s *Bolt) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "chat.db")
	for _, suffix := range []string{"", walFrozenSuffix, walSuffix} {
		data, err := os.ReadFile(s.path + suffix)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+suffix, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func reopen(t *testing.T, path string) *Bolt {
	t.Helper()
	s, err := Open(path, Options{CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestCrashRecovery copies the files of an open store (a crash: no Close,
// no final checkpoint) at each stage of the WAL's life and checks that the
// copy opens with every acknowledged Apply and no WAL left behind.
func TestCrashRecovery(t *testing.T) {
	const sessions = 5
	tests := []struct {
		name string
		// prepare applies rounds 1..6 its own way.
		prepare func(t *testing.T, s *Bolt)
	}{
		{name: "all in the WAL", prepare: func(t *testing.T, s *Bolt) {
			for seq := uint64(1); seq <= 6; seq++ {
				mustApply(t, s, p2pBatch(sessions, seq))
			}
		}},
		{name: "checkpointed then WAL", prepare: func(t *testing.T, s *Bolt) {
			for seq := uint64(1); seq <= 6; seq++ {
				mustApply(t, s, p2pBatch(sessions, seq))
				if seq == 3 {
					settle(t, s)
				}
			}
		}},
		{name: "frozen not yet in bbolt", prepare: func(t *testing.T, s *Bolt) {
			for seq := uint64(1); seq <= 6; seq++ {
				mustApply(t, s, p2pBatch(sessions, seq))
				if seq == 4 {
					// A checkpoint that froze and rotated, then crashed
					// before its bbolt commit.
					s.ckptMu.Lock()
					s.applyMu.Lock()
					if err := s.freeze(); err != nil {
						t.Fatal(err)
					}
					s.applyMu.Unlock()
					t.Cleanup(s.ckptMu.Unlock)
				}
			}
		}},
		{name: "frozen in bbolt, its WAL not yet deleted", prepare: func(t *testing.T, s *Bolt) {
			for seq := uint64(1); seq <= 6; seq++ {
				mustApply(t, s, p2pBatch(sessions, seq))
				if seq == 2 {
					settle(t, s)
					// Put back the frozen WAL a crash before its removal
					// would leave: records already in bbolt.
					if err := os.WriteFile(s.path+walFrozenSuffix, walOf(p2pBatch(sessions, 1), p2pBatch(sessions, 2)), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTempOpt(t, Options{CheckpointInterval: -1})
			setupSessions(t, s, sessions)
			tc.prepare(t, s)
			checkSessions(t, s, sessions, 6)
			path := copyStore(t, s)
			c := reopen(t, path)
			checkSessions(t, c, sessions, 6)
			if _, err := os.Stat(path + walFrozenSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("frozen WAL still there after Open: %v", err)
			}
			var none chat.Batch
			if n, err := readWAL(path+walSuffix, &none); err != nil || n != 0 {
				t.Errorf("active WAL after Open: %d records (%v); want none", n, err)
			}
			// The recovered store goes on working.
			mustApply(t, c, p2pBatch(sessions, 7))
			settle(t, c)
			checkSessions(t, c, sessions, 7)
		})
	}
}

func mustApply(t *testing.T, s *Bolt, b *chat.Batch) {
	t.Helper()
	if err := s.Apply(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func walOf(bs ...*chat.Batch) []byte {
	var out []byte
	for _, b := range bs {
		out = appendWALRecord(out, b)
	}
	return out
}

// TestTornWALTail checks that Open replays every complete record and
// stops at a torn or corrupt last one (its Apply never returned).
func TestTornWALTail(t *testing.T) {
	const sessions = 3
	// The live files' records carry generation 1 (a fresh store).
	gen := genBytes(1)
	full := encodeWALRecord(nil, p2pBatch(sessions, 4), gen[:])
	tests := []struct {
		name string
		tail []byte
		want uint64
	}{
		{name: "a whole record", tail: full, want: 4},
		{name: "a whole record of another generation", tail: walOf(p2pBatch(sessions, 4))},
		{name: "half a header", tail: full[:5]},
		{name: "header only", tail: full[:walHeader]},
		{name: "payload cut short", tail: full[:len(full)-3]},
		{name: "bad CRC", tail: func() []byte {
			b := append([]byte(nil), full...)
			b[len(b)-1] ^= 0xff
			return b
		}()},
		{name: "length past the end", tail: []byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1}},
		{name: "zeroes", tail: make([]byte, 64)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTempOpt(t, Options{CheckpointInterval: -1})
			setupSessions(t, s, sessions)
			for seq := uint64(1); seq <= 3; seq++ {
				mustApply(t, s, p2pBatch(sessions, seq))
			}
			s.ckptMu.Lock() // no growing while the log is copied
			path := copyStore(t, s)
			end := s.wal.size // where the next record would have gone
			s.ckptMu.Unlock()
			// The tail goes right after the complete records, as a torn
			// append leaves it, over any zeroes grown ahead of them.
			f, err := os.OpenFile(path+walSuffix, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(tc.tail, end); err != nil {
				t.Fatal(err)
			}
			f.Close()
			c := reopen(t, path)
			checkSessions(t, c, sessions, max(tc.want, 3))
		})
	}
}

// TestWALCorruptRecordRefused checks that a complete record with a good
// CRC that does not decode stops Open instead of being skipped.
func TestWALCorruptRecordRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "chat.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	payload := []byte{5} // five messages, none there
	rec := make([]byte, walHeader, walHeader+len(payload))
	rec = append(rec, payload...)
	binary.BigEndian.PutUint32(rec, uint32(len(payload)))
	binary.BigEndian.PutUint32(rec[4:], walChecksum(rec[:4], payload))
	if err := os.WriteFile(path+walSuffix, rec, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(path, Options{}); !errors.Is(err, ErrCorrupt) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open with an undecodable record: %v, want ErrCorrupt", err)
	}
}

// TestCloseCheckpoints checks that Close leaves everything in bbolt and no
// WAL, and that Apply fails after Close.
func TestCloseCheckpoints(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "chat.db")
	s, err := Open(path, Options{CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	setupSessions(t, s, 2)
	mustApply(t, s, p2pBatch(2, 1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{walSuffix, walFrozenSuffix} {
		if _, err := os.Stat(path + suffix); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after Close: %v, want none", suffix, err)
		}
	}
	if err := s.Apply(context.Background(), p2pBatch(2, 2)); err == nil {
		t.Error("Apply after Close succeeded")
	}
	c := reopen(t, path)
	checkSessions(t, c, 2, 1)
}

// TestBackupIncludesOverlay checks that a backup holds what is still only
// in the WAL.
func TestBackupIncludesOverlay(t *testing.T) {
	s := openTempOpt(t, Options{CheckpointInterval: -1})
	setupSessions(t, s, 2)
	mustApply(t, s, p2pBatch(2, 1))
	mustApply(t, s, p2pBatch(2, 2))
	path := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backup(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c := reopen(t, path)
	checkSessions(t, c, 2, 2)
}

// TestOverlayFullCheckpoints checks that a full overlay starts a
// checkpoint without waiting for the timer.
func TestOverlayFullCheckpoints(t *testing.T) {
	s := openTempOpt(t, Options{CheckpointInterval: -1, CheckpointMessages: 10, NoSync: true})
	setupSessions(t, s, 5)
	for seq := uint64(1); seq <= 2; seq++ {
		mustApply(t, s, p2pBatch(5, seq))
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.activeN.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a full overlay was not checkpointed")
		}
		time.Sleep(time.Millisecond)
	}
	checkSessions(t, s, 5, 2)
}

// TestMatchesMemstore applies the same random batches, hot and direct, to
// the store and to memstore (the reference), with checkpoints at random
// points, and compares every read: the overlay merge and the ordering of
// direct batches against the overlay must be invisible.
func TestMatchesMemstore(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(4) {
		t.Run("seed="+strconv.FormatUint(seed, 10), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			s := openTempOpt(t, Options{CheckpointInterval: -1, NoSync: true})
			ref := memstore.New()
			const sessions = 4
			uids := []string{"a", "b", "c"}
			var setup chat.Batch
			for id := chat.SessionID(1); id <= sessions; id++ {
				setup.Sessions = append(setup.Sessions, chat.Session{ID: id, App: "app", Kind: chat.KindGroup, Owner: "a"})
				for _, u := range uids {
					setup.Members = append(setup.Members, chat.Member{Session: id, UID: u})
				}
			}
			both(t, s, ref, &setup)
			for step := range 300 {
				var b chat.Batch
				switch op := rng.IntN(10); {
				case op < 6: // hot: messages (sometimes re-putting a seq), summaries, reads
					for range 1 + rng.IntN(4) {
						id := chat.SessionID(1 + rng.IntN(sessions))
						seq := uint64(1 + rng.IntN(40))
						from := uids[rng.IntN(len(uids))]
						b.Messages = append(b.Messages, chat.Message{Session: id, Seq: seq, App: "app", From: from,
							Type: "text", Content: []byte(strconv.Itoa(step)), CID: "c" + strconv.Itoa(rng.IntN(30)), CreatedAt: int64(step)})
						b.Summaries = append(b.Summaries, chat.Summary{Session: id, Seq: seq, At: int64(step), From: from, Preview: strconv.Itoa(step)})
						b.Reads = append(b.Reads, chat.ReadMark{Session: id, UID: uids[rng.IntN(len(uids))], Seq: uint64(rng.IntN(40))})
					}
				case op < 7: // direct: remove a member, maybe with a read mark for it
					id := chat.SessionID(1 + rng.IntN(sessions))
					u := uids[rng.IntN(len(uids))]
					b.DelMembers = []chat.MemberKey{{Session: id, UID: u}}
					b.Reads = []chat.ReadMark{{Session: id, UID: u, Seq: 50}}
				case op < 8: // direct: (re)add a member, with a message at a used seq
					id := chat.SessionID(1 + rng.IntN(sessions))
					b.Members = []chat.Member{{Session: id, UID: uids[rng.IntN(len(uids))], ReadSeq: uint64(rng.IntN(5))}}
					b.Messages = []chat.Message{{Session: id, Seq: uint64(1 + rng.IntN(40)), App: "app", From: "a", Type: "direct",
						Content: []byte("d" + strconv.Itoa(step)), CID: "c" + strconv.Itoa(rng.IntN(30))}}
				case op < 9: // direct: re-put a session from an old read
					id := chat.SessionID(1 + rng.IntN(sessions))
					b.Sessions = []chat.Session{{ID: id, App: "app", Kind: chat.KindGroup, Owner: uids[rng.IntN(len(uids))],
						Name: strconv.Itoa(step), LastSeq: uint64(rng.IntN(40)), LastPreview: "put"}}
				default:
					if err := s.checkpoint(); err != nil {
						t.Fatal(err)
					}
					continue
				}
				both(t, s, ref, &b)
				compareStores(t, ctx, s, ref, sessions, uids)
			}
			settle(t, s)
			compareStores(t, ctx, s, ref, sessions, uids)
		})
	}
}

func both(t *testing.T, s *Bolt, ref *memstore.Store, b *chat.Batch) {
	t.Helper()
	ctx := context.Background()
	errS, errR := s.Apply(ctx, b), ref.Apply(ctx, b)
	if (errS == nil) != (errR == nil) {
		t.Fatalf("Apply: store %v, memstore %v", errS, errR)
	}
}

func compareStores(t *testing.T, ctx context.Context, s *Bolt, ref *memstore.Store, sessions int, uids []string) {
	t.Helper()
	norm := func(ms []chat.Message) []chat.Message {
		for i := range ms {
			if len(ms[i].Content) == 0 {
				ms[i].Content = nil
			}
		}
		return ms
	}
	for id := chat.SessionID(1); id <= chat.SessionID(sessions); id++ {
		for _, q := range []struct {
			lo, hi uint64
			limit  int
			newest bool
		}{{0, ^uint64(0), 0, false}, {3, 20, 4, false}, {3, 20, 4, true}, {0, ^uint64(0), 7, true}} {
			got, err1 := s.Messages(ctx, id, q.lo, q.hi, q.limit, q.newest)
			want, err2 := ref.Messages(ctx, id, q.lo, q.hi, q.limit, q.newest)
			if err1 != nil || err2 != nil || (len(got)+len(want) > 0 && !reflect.DeepEqual(norm(got), norm(want))) {
				t.Fatalf("Messages(%d, %+v):\n got %v %v\nwant %v %v", id, q, got, err1, want, err2)
			}
		}
		got, err1 := s.Session(ctx, id)
		want, err2 := ref.Session(ctx, id)
		if err1 != nil || err2 != nil || got != want {
			t.Fatalf("Session(%d):\n got %+v %v\nwant %+v %v", id, got, err1, want, err2)
		}
		gm, err1 := s.Members(ctx, id)
		wm, err2 := ref.Members(ctx, id)
		if err1 != nil || err2 != nil || (len(gm)+len(wm) > 0 && !reflect.DeepEqual(gm, wm)) {
			t.Fatalf("Members(%d):\n got %+v %v\nwant %+v %v", id, gm, err1, wm, err2)
		}
		for _, u := range uids {
			g, err1 := s.Member(ctx, id, u)
			w, err2 := ref.Member(ctx, id, u)
			if (err1 == nil) != (err2 == nil) || (err1 == nil && g != w) {
				t.Fatalf("Member(%d, %s):\n got %+v %v\nwant %+v %v", id, u, g, err1, w, err2)
			}
		}
	}
}

// TestWALRecycled checks that a checkpointed WAL file becomes the spare,
// stamped with a new generation and keeping its size, that the next
// rotation writes into it in place, and that the records left in it from
// before never count again.
func TestWALRecycled(t *testing.T) {
	const sessions = 3
	s := openTempOpt(t, Options{CheckpointInterval: -1})
	setupSessions(t, s, sessions)
	for seq := uint64(1); seq <= 6; seq++ {
		mustApply(t, s, p2pBatch(sessions, seq))
	}
	s.growWAL(walGrowSteps) // what Apply asked the checkpointer for
	settle(t, s)            // the file with 6 records becomes the spare
	fi, err := os.Stat(s.path + walSpareSuffix)
	if err != nil {
		t.Fatalf("no spare after a checkpoint: %v", err)
	}
	if fi.Size() < walMinAlloc {
		t.Errorf("spare is %d bytes, want at least %d grown ahead of its records", fi.Size(), walMinAlloc)
	}
	spareSize := fi.Size()
	var b chat.Batch
	if n, err := readWAL(s.path+walSpareSuffix, &b); err != nil || n != 0 {
		t.Fatalf("spare reads as %d records (%v), want none: its old records must be dead", n, err)
	}
	mustApply(t, s, p2pBatch(sessions, 7))
	settle(t, s) // rotation: the spare is the active file now
	if _, err := os.Stat(s.path + walSpareSuffix); err != nil {
		t.Fatalf("no spare after the second checkpoint: %v", err)
	}
	if a := s.wal.alloc.Load(); a != spareSize {
		t.Errorf("after the rotation the active file has %d real bytes, want the spare's %d", a, spareSize)
	}
	mustApply(t, s, p2pBatch(sessions, 8))
	fi, err = os.Stat(s.path + walSuffix)
	if err != nil || fi.Size() < spareSize {
		t.Fatalf("active file %v (%v): want the spare, written in place", fi, err)
	}
	b = chat.Batch{}
	n, err := readWAL(s.path+walSuffix, &b)
	if err != nil || n != 1 || len(b.Messages) != sessions || b.Messages[0].Seq != 8 {
		t.Fatalf("active file reads as %d records, %d messages (%v); want only the one of seq 8", n, len(b.Messages), err)
	}
	path := copyStore(t, s)
	c := reopen(t, path)
	checkSessions(t, c, sessions, 8)
}

// TestWALGrowsAhead checks that the active WAL file is grown with synced
// zeroes ahead of its records, from a fresh store on, so that appends
// land in place instead of extending the file, and that the log still
// reads back exactly its records.
func TestWALGrowsAhead(t *testing.T) {
	const sessions = 20
	s := openTempOpt(t, Options{CheckpointInterval: -1})
	setupSessions(t, s, sessions)
	mustApply(t, s, p2pBatch(sessions, 1))
	// Apply asked the checkpointer to grow the file; wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for s.wal.alloc.Load() < walMinAlloc {
		if time.Now().After(deadline) {
			t.Fatalf("active file has %d real bytes after 10 s, want %d grown ahead", s.wal.alloc.Load(), walMinAlloc)
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.ckptMu.Lock() // no growing while the sizes are read
	fi, err := os.Stat(s.path + walSuffix)
	grown := s.wal.alloc.Load()
	s.ckptMu.Unlock()
	if err != nil || fi.Size() != grown {
		t.Fatalf("file %v (%v), want %d bytes", fi, err, grown)
	}
	s.ckptMu.Lock() // appends alone, in place: the size does not move
	for seq := uint64(2); seq <= 20; seq++ {
		mustApply(t, s, p2pBatch(sessions, seq))
	}
	fi, err = os.Stat(s.path + walSuffix)
	s.ckptMu.Unlock()
	if err != nil || fi.Size() != grown {
		t.Fatalf("after 19 more appends the file is %v (%v), want still %d bytes: written in place", fi, err, grown)
	}
	var b chat.Batch
	if n, err := readWAL(s.path+walSuffix, &b); err != nil || n != 20 {
		t.Fatalf("the grown file reads as %d records (%v), want 20", n, err)
	}
	checkSessions(t, reopen(t, copyStore(t, s)), sessions, 20)
}

// TestWALGrowRacesAppends grows the active file while batches are being
// appended (the checkpointer and the journal at once) and then replays a
// crash copy of the log: zeroes written by grow must never land on a
// record, whatever the interleaving.
func TestWALGrowRacesAppends(t *testing.T) {
	const sessions = 50
	s := openTempOpt(t, Options{CheckpointInterval: -1, NoSync: true})
	setupSessions(t, s, sessions)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			s.growWAL(1) // one chunk at a time, as between checkpoint transactions
		}
	}()
	const last = 400
	for seq := uint64(1); seq <= last; seq++ {
		mustApply(t, s, p2pBatch(sessions, seq))
	}
	<-done
	s.ckptMu.Lock()
	path := copyStore(t, s)
	s.ckptMu.Unlock()
	if fi, err := os.Stat(path + walSuffix); err != nil || fi.Size() <= s.wal.size {
		t.Fatalf("copied log %v (%v): want it grown past its %d bytes of records", fi, err, s.wal.size)
	}
	checkSessions(t, reopen(t, path), sessions, last)
}
