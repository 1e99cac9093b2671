package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"chatd/chat"
	"chatd/chat/memstore"
)

// recKey is the big-endian key of n, so keys sort as numbers.
func recKey(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// withRecords returns p2pBatch(sessions, seq) carrying records as well.
func withRecords(sessions int, seq uint64, puts []chat.Record, dels []chat.RecordKey) *chat.Batch {
	b := p2pBatch(sessions, seq)
	b.Records, b.DelRecords = puts, dels
	return b
}

func TestHotOnlyIncludesRecords(t *testing.T) {
	if !hotOnly(&chat.Batch{Messages: make([]chat.Message, 1), Records: make([]chat.Record, 1), DelRecords: make([]chat.RecordKey, 1)}) {
		t.Fatal("a batch of messages and records is not hot")
	}
	if hotOnly(&chat.Batch{Records: make([]chat.Record, 1), Members: make([]chat.Member, 1)}) {
		t.Fatal("a batch with members is hot")
	}
}

func TestWALRecordRoundTripRecords(t *testing.T) {
	b := chat.Batch{
		Messages: []chat.Message{{Session: 1, Seq: 1, App: "a", From: "u", Type: "text", Content: []byte("x"), CreatedAt: 3}},
		Records: []chat.Record{
			{Kind: "wh.ev", Key: recKey(7), Value: []byte(`{"e":1}`)},
			{Kind: "svc.conv", Key: []byte{0, 0xff}, Value: []byte{}},
		},
		DelRecords: []chat.RecordKey{{Kind: "wh.ev", Key: recKey(6)}},
	}
	onlyRecords := chat.Batch{DelRecords: []chat.RecordKey{{Kind: "k", Key: []byte("gone")}}}
	gen := genBytes(3)
	var file []byte
	file = append(file, walMagic[:]...)
	file = append(file, gen[:]...)
	file = encodeWALRecord(file, &b, gen[:])
	file = encodeWALRecord(file, &onlyRecords, gen[:])
	path := filepath.Join(t.TempDir(), "w")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	var got []chat.Batch
	n, err := readWALEach(path, func(rb *chat.Batch) {
		c := chat.Batch{
			Messages: slices.Clone(rb.Messages), Summaries: slices.Clone(rb.Summaries), Reads: slices.Clone(rb.Reads),
			Records: slices.Clone(rb.Records), DelRecords: slices.Clone(rb.DelRecords),
		}
		got = append(got, c)
	})
	if err != nil || n != 2 {
		t.Fatalf("readWALEach = %d records, %v; want 2", n, err)
	}
	norm := func(b chat.Batch) chat.Batch { // nil and empty slices read alike
		for _, p := range []any{&b.Messages, &b.Summaries, &b.Reads, &b.Records, &b.DelRecords} {
			v := reflect.ValueOf(p).Elem()
			if v.Len() == 0 {
				v.Set(reflect.Zero(v.Type()))
			}
		}
		return b
	}
	for i, want := range []chat.Batch{b, onlyRecords} {
		if g := norm(got[i]); !reflect.DeepEqual(g, norm(want)) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, g, want)
		}
	}

	// A record whose CRC matches but whose records section does not decode
	// (an invalid kind) is corruption, not a torn tail.
	bad := chat.Batch{Records: []chat.Record{{Kind: "Bad", Key: []byte("k")}}}
	if err := os.WriteFile(path, appendWALRecord(nil, &bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readWALEach(path, func(*chat.Batch) {}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("record with an invalid kind: %v, want ErrCorrupt", err)
	}
}

// Records written before records rode the WAL: round 1 of p2pBatch(1, 1)
// as the previous build encoded it, in the first format (no file header)
// and in the generation-stamped one (generation 1).
const (
	oldWALRecordV1  = "00000042301fa4e30100000000000000010116010361707002753004746578740263310204226d3122010000000000000001010202753004746578740001000000000000000102753001"
	oldWALRecordGen = "000000423322c0480100000000000000010116010361707002753004746578740263310204226d3122010000000000000001010202753004746578740001000000000000000102753001"
)

// TestOldWALRecordReplays checks that a batch without records is still
// encoded byte for byte as before (the records section is optional), and
// that a log written before records existed replays at Open.
func TestOldWALRecordReplays(t *testing.T) {
	gen := genBytes(1)
	if got := hex.EncodeToString(appendWALRecord(nil, p2pBatch(1, 1))); got != oldWALRecordV1 {
		t.Fatalf("first-format encoding changed:\n got %s\nwant %s", got, oldWALRecordV1)
	}
	if got := hex.EncodeToString(encodeWALRecord(nil, p2pBatch(1, 1), gen[:])); got != oldWALRecordGen {
		t.Fatalf("encoding changed:\n got %s\nwant %s", got, oldWALRecordGen)
	}
	for _, tc := range []struct {
		name string
		file func() []byte
	}{
		{"first format", func() []byte { b, _ := hex.DecodeString(oldWALRecordV1); return b }},
		{"generation format", func() []byte {
			b, _ := hex.DecodeString(oldWALRecordGen)
			return append(append(append([]byte(nil), walMagic[:]...), gen[:]...), b...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTempOpt(t, Options{CheckpointInterval: -1})
			setupSessions(t, s, 1)
			path := copyStore(t, s)
			if err := os.WriteFile(path+walSuffix, tc.file(), 0o600); err != nil {
				t.Fatal(err)
			}
			c := reopen(t, path)
			checkSessions(t, c, 1, 1)
		})
	}
}

// recModel is what a store's records should be: kind → key → value.
type recModel map[string]map[string]string

func (m recModel) apply(b *chat.Batch) {
	for _, r := range b.Records {
		if m[r.Kind] == nil {
			m[r.Kind] = map[string]string{}
		}
		m[r.Kind][string(r.Key)] = string(r.Value)
	}
	for _, k := range b.DelRecords {
		delete(m[k.Kind], string(k.Key))
	}
}

// check compares every record read of s with the model: Record of each
// key ever used, and scans of every kind with a set of prefixes, afters,
// limits and both directions against the model's sorted keys.
func (m recModel) check(t *testing.T, s chat.Store, used map[string][][]byte) {
	t.Helper()
	ctx := context.Background()
	for kind, keys := range used {
		for _, k := range keys {
			v, err := s.Record(ctx, kind, k)
			want, ok := m[kind][string(k)]
			switch {
			case !ok && !errors.Is(err, chat.ErrNotFound):
				t.Fatalf("Record %s/%x = %q, %v; want ErrNotFound", kind, k, v, err)
			case ok && (err != nil || string(v) != want):
				t.Fatalf("Record %s/%x = %q, %v; want %q", kind, k, v, err, want)
			}
		}
		var all []string
		for k := range m[kind] {
			all = append(all, k)
		}
		slices.Sort(all)
		prefixes := [][]byte{nil, {0}, {0, 0, 0, 0, 0, 0, 0}, recKey(3)[:7], {1}}
		afters := [][]byte{nil, recKey(0), recKey(2), recKey(5), recKey(9), recKey(1 << 20), {0, 0, 0, 0, 0, 0, 0}}
		for _, prefix := range prefixes {
			for _, after := range afters {
				for _, limit := range []int{0, 1, 2, 3} {
					for _, reverse := range []bool{false, true} {
						var want []string
						for _, k := range all {
							if chat.InRecordRange([]byte(k), prefix, after, reverse) {
								want = append(want, k)
							}
						}
						if reverse {
							slices.Reverse(want)
						}
						if limit > 0 && len(want) > limit {
							want = want[:limit]
						}
						rs, err := s.ScanRecords(ctx, kind, prefix, after, limit, reverse)
						if err != nil {
							t.Fatal(err)
						}
						got := make([]string, len(rs))
						for i, r := range rs {
							got[i] = string(r.Key)
							if r.Kind != kind || string(r.Value) != m[kind][got[i]] {
								t.Fatalf("scan %s: record %x = %q, want %q", kind, r.Key, r.Value, m[kind][got[i]])
							}
						}
						if len(want) == 0 {
							want = []string{}
						}
						if !slices.Equal(got, want) {
							t.Fatalf("scan %s prefix %x after %x limit %d reverse %v:\n got %x\nwant %x",
								kind, prefix, after, limit, reverse, got, want)
						}
					}
				}
			}
		}
	}
}

// recordRounds are batches of record changes whose order matters: puts
// replaced and deleted in later batches, deletes undone by later puts, a
// put and delete of one key in one batch, a delete of a key never put.
func recordRounds() []*chat.Batch {
	put := func(kind string, n uint64, v string) chat.Record {
		return chat.Record{Kind: kind, Key: recKey(n), Value: []byte(v)}
	}
	del := func(kind string, n uint64) chat.RecordKey { return chat.RecordKey{Kind: kind, Key: recKey(n)} }
	return []*chat.Batch{
		{Records: []chat.Record{put("a", 1, "1a"), put("a", 2, "2a"), put("a", 3, "3a"), put("a", 5, "5a"), put("a", 9, "9a"), put("b", 1, "b1")}},
		{Records: []chat.Record{put("a", 2, "2b"), put("a", 4, ""), put("a", 7, "7b")}, DelRecords: []chat.RecordKey{del("a", 3), del("a", 8)}},
		{Records: []chat.Record{put("a", 3, "3c"), put("a", 6, "6c")}, DelRecords: []chat.RecordKey{del("a", 6), del("a", 1), del("b", 1)}},
		{Records: []chat.Record{put("a", 1, "1d"), put("a", 1<<20, "big"), put("b", 2, "b2")}, DelRecords: []chat.RecordKey{del("a", 9)}},
		{Records: []chat.Record{put("a", 0, "0e")}, DelRecords: []chat.RecordKey{del("a", 2), del("a", 5), del("b", 2)}},
		{Records: []chat.Record{put("a", 2, "2f"), put("a", 5, "5f")}, DelRecords: []chat.RecordKey{del("a", 7)}},
	}
}

func usedKeys(rounds []*chat.Batch) map[string][][]byte {
	used := map[string][][]byte{}
	for _, b := range rounds {
		for _, r := range b.Records {
			used[r.Kind] = append(used[r.Kind], r.Key)
		}
		for _, k := range b.DelRecords {
			used[k.Kind] = append(used[k.Kind], k.Key)
		}
	}
	return used
}

// TestRecordsAcrossLayers puts record changes into bbolt, the frozen
// overlay and the active overlay at once, in every split of the rounds,
// and checks every read against the model after each round, after the
// checkpoint and after a reopen.
func TestRecordsAcrossLayers(t *testing.T) {
	rounds := recordRounds()
	used := usedKeys(rounds)
	for inBolt := 0; inBolt <= len(rounds); inBolt++ {
		for inFrozen := inBolt; inFrozen <= len(rounds); inFrozen++ {
			t.Run(strconv.Itoa(inBolt)+"/"+strconv.Itoa(inFrozen), func(t *testing.T) {
				dir := t.TempDir()
				s, err := Open(filepath.Join(dir, "chat.db"), Options{CheckpointInterval: -1, NoSync: true})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				m := recModel{}
				frozen := false
				for i, b := range rounds {
					if i == inBolt {
						settle(t, s)
					}
					if i == inFrozen && !frozen {
						s.ckptMu.Lock() // a checkpoint that froze and is writing bbolt
						s.applyMu.Lock()
						if err := s.freeze(); err != nil {
							t.Fatal(err)
						}
						s.applyMu.Unlock()
						frozen = true
					}
					mustApply(t, s, b)
					m.apply(b)
					m.check(t, s, used)
				}
				if frozen {
					err := s.flush()
					s.ckptMu.Unlock()
					if err != nil {
						t.Fatal(err)
					}
					m.check(t, s, used)
				}
				settle(t, s)
				m.check(t, s, used)
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s, err = Open(filepath.Join(dir, "chat.db"), Options{CheckpointInterval: -1, NoSync: true})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				m.check(t, s, used)
			})
		}
	}
}

// TestRecordsCrashRecovery copies the files of an open store (a crash)
// at each stage of the WAL's life and checks that the copy opens with
// every record change of every acknowledged Apply, in order.
func TestRecordsCrashRecovery(t *testing.T) {
	const sessions = 2
	rounds := recordRounds()
	used := usedKeys(rounds)
	batch := func(i int) *chat.Batch {
		return withRecords(sessions, uint64(i+1), rounds[i].Records, rounds[i].DelRecords)
	}
	tests := []struct {
		name    string
		prepare func(t *testing.T, s *Bolt)
	}{
		{name: "all in the WAL", prepare: func(t *testing.T, s *Bolt) {
			for i := range rounds {
				mustApply(t, s, batch(i))
			}
		}},
		{name: "checkpointed then WAL", prepare: func(t *testing.T, s *Bolt) {
			for i := range rounds {
				mustApply(t, s, batch(i))
				if i == 2 {
					settle(t, s)
				}
			}
		}},
		{name: "frozen not yet in bbolt", prepare: func(t *testing.T, s *Bolt) {
			for i := range rounds {
				mustApply(t, s, batch(i))
				if i == 3 {
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
			for i := range rounds {
				mustApply(t, s, batch(i))
				if i == 3 {
					settle(t, s)
					// The frozen WAL a crash before its removal would
					// leave: changes already in bbolt, replayed again
					// before the active file's later ones.
					if err := os.WriteFile(s.path+walFrozenSuffix, walOf(batch(0), batch(1), batch(2), batch(3)), 0o600); err != nil {
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
			m := recModel{}
			for _, b := range rounds {
				m.apply(b)
			}
			m.check(t, s, used)
			checkSessions(t, s, sessions, uint64(len(rounds)))
			path := copyStore(t, s)
			c := reopen(t, path)
			m.check(t, c, used)
			checkSessions(t, c, sessions, uint64(len(rounds)))
		})
	}
}

// TestTornWALTailRecords checks that Open replays every complete record
// with its record changes and drops a torn last one, records and all.
func TestTornWALTailRecords(t *testing.T) {
	const sessions = 2
	last := withRecords(sessions, 3,
		[]chat.Record{{Kind: "a", Key: recKey(3), Value: []byte("3")}, {Kind: "a", Key: recKey(1), Value: []byte("replaced")}},
		[]chat.RecordKey{{Kind: "a", Key: recKey(2)}})
	for _, tc := range []struct {
		name  string
		tail  func(full []byte) []byte
		whole bool
	}{
		{"whole", func(full []byte) []byte { return full }, true},
		{"cut in the records section", func(full []byte) []byte { return full[:len(full)-4] }, false},
		{"bad CRC", func(full []byte) []byte { b := slices.Clone(full); b[len(b)-2] ^= 1; return b }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTempOpt(t, Options{CheckpointInterval: -1})
			setupSessions(t, s, sessions)
			m := recModel{}
			for i, b := range []*chat.Batch{
				withRecords(sessions, 1, []chat.Record{{Kind: "a", Key: recKey(1), Value: []byte("1")}}, nil),
				withRecords(sessions, 2, []chat.Record{{Kind: "a", Key: recKey(2), Value: []byte("2")}}, nil),
			} {
				mustApply(t, s, b)
				m.apply(b)
				if i == 0 {
					settle(t, s) // one in bbolt, one in the WAL
				}
			}
			s.ckptMu.Lock()
			path := copyStore(t, s)
			end := s.wal.size
			// The tail as the active file's generation would carry it.
			tail := tc.tail(encodeWALRecord(nil, last, s.wal.gen[:]))
			s.ckptMu.Unlock()
			f, err := os.OpenFile(path+walSuffix, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(tail, end); err != nil {
				t.Fatal(err)
			}
			f.Close()
			c := reopen(t, path)
			want := uint64(2)
			if tc.whole {
				m.apply(last)
				want = 3
			}
			m.check(t, c, usedKeys([]*chat.Batch{last, {Records: []chat.Record{{Kind: "a", Key: recKey(1)}}}}))
			checkSessions(t, c, sessions, want)
		})
	}
}

// TestRecordsDuringCheckpoint has a writer replacing a window of records
// (round i puts key i and deletes key i-2, with messages alongside), a
// checkpointer looping, and readers asserting that every scan sees
// exactly keys {j-1, j} for some round j at least as new as the last
// acknowledged one: a change is seen in memory or in bbolt, never in
// neither, and never twice.
func TestRecordsDuringCheckpoint(t *testing.T) {
	s := openTempOpt(t, Options{CheckpointInterval: -1, NoSync: true})
	const sessions, rounds = 2, 400
	setupSessions(t, s, sessions)
	ctx := context.Background()
	round := func(i uint64) *chat.Batch {
		b := withRecords(sessions, i, []chat.Record{{Kind: "w", Key: recKey(i), Value: []byte(strconv.FormatUint(i, 10))}}, nil)
		if i >= 3 {
			b.DelRecords = []chat.RecordKey{{Kind: "w", Key: recKey(i - 2)}}
		}
		return b
	}
	mustApply(t, s, round(1))
	mustApply(t, s, round(2))
	var written, started atomic.Uint64 // rounds acknowledged, rounds handed to Apply
	written.Store(2)
	started.Store(2)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	wg.Add(1)
	go func() {
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
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				lo := written.Load()
				switch r {
				case 0, 1:
					rs, err := s.ScanRecords(ctx, "w", nil, nil, 0, r == 1)
					if err != nil {
						errs <- err
						return
					}
					if len(rs) != 2 {
						errs <- errors.New("scan saw " + strconv.Itoa(len(rs)) + " records, want 2")
						return
					}
					a, b := binary.BigEndian.Uint64(rs[0].Key), binary.BigEndian.Uint64(rs[1].Key)
					if r == 1 {
						a, b = b, a
					}
					if b != a+1 || b < lo || string(rs[1-r].Value) != strconv.FormatUint(b, 10) {
						errs <- errors.New("scan saw keys " + strconv.FormatUint(a, 10) + ", " + strconv.FormatUint(b, 10) + " after round " + strconv.FormatUint(lo, 10))
						return
					}
				default:
					if _, err := s.Record(ctx, "w", recKey(lo)); err != nil {
						if started.Load() < lo+2 { // round lo+2 deletes it
							errs <- errors.New("acknowledged record " + strconv.FormatUint(lo, 10) + " missing: " + err.Error())
							return
						}
					}
					if lo > 2 {
						if _, err := s.Record(ctx, "w", recKey(lo-2)); !errors.Is(err, chat.ErrNotFound) {
							errs <- errors.New("deleted record " + strconv.FormatUint(lo-2, 10) + " still read")
							return
						}
					}
				}
			}
		}()
	}
	for i := uint64(3); i <= rounds; i++ {
		started.Store(i)
		mustApply(t, s, round(i))
		written.Store(i)
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	rs, err := s.ScanRecords(ctx, "w", nil, nil, 0, false)
	if err != nil || len(rs) != 2 || !bytes.Equal(rs[0].Key, recKey(rounds-1)) || !bytes.Equal(rs[1].Key, recKey(rounds)) {
		t.Fatalf("final scan %+v, %v", rs, err)
	}
	checkSessions(t, s, sessions, rounds)
}

// TestHotRecordsRefusedBeforeWAL checks that an invalid record fails a
// hot batch before anything reaches the WAL or the overlay.
func TestHotRecordsRefusedBeforeWAL(t *testing.T) {
	s := openTempOpt(t, Options{CheckpointInterval: -1})
	setupSessions(t, s, 1)
	size := s.wal.size
	b := withRecords(1, 1, []chat.Record{{Kind: "ok", Key: []byte("k")}, {Kind: "Bad!", Key: []byte("k")}}, nil)
	if err := s.Apply(context.Background(), b); err == nil {
		t.Fatal("Apply of a bad record kind succeeded")
	}
	if s.wal.size != size || !s.active.empty() {
		t.Fatalf("the refused batch was written: WAL %d → %d bytes, overlay empty %v", size, s.wal.size, s.active.empty())
	}
	checkSessions(t, s, 1, 0)
}

// TestRecordsMatchMemstore applies random record changes through the WAL
// with checkpoints in between and compares every read with memstore.
func TestRecordsMatchMemstore(t *testing.T) {
	s := openTempOpt(t, Options{CheckpointInterval: -1, NoSync: true})
	ref := memstore.New()
	ctx := context.Background()
	used := map[string][][]byte{}
	m := recModel{}
	x := uint64(12345)
	rnd := func(n uint64) uint64 { x = x*6364136223846793005 + 1442695040888963407; return (x >> 33) % n }
	for round := range 60 {
		var b chat.Batch
		for range 1 + rnd(6) {
			k := recKey(rnd(12))
			if rnd(3) == 0 {
				b.DelRecords = append(b.DelRecords, chat.RecordKey{Kind: "r", Key: k})
			} else {
				b.Records = append(b.Records, chat.Record{Kind: "r", Key: k, Value: []byte(strconv.Itoa(round))})
			}
			used["r"] = append(used["r"], k)
		}
		mustApply(t, s, &b)
		if err := ref.Apply(ctx, &b); err != nil {
			t.Fatal(err)
		}
		m.apply(&b)
		if rnd(4) == 0 {
			settle(t, s)
		}
		m.check(t, s, used)
		m.check(t, ref, used)
	}
}
