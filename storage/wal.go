package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"chatd/chat"
)

// The write-ahead log; see doc.go for the format and the recovery rules.

// walSuffix names the active WAL next to the data file; walFrozenSuffix
// names the WAL of the frozen overlay while a checkpoint writes it to bbolt.
// walSpareSuffix names a checkpointed WAL file kept for reuse as the next
// active one (see doc.go: rewriting allocated blocks makes each sync
// cheaper than appending to a growing file).
const (
	walSuffix       = "-wal"
	walFrozenSuffix = "-wal.1"
	walSpareSuffix  = "-wal.2"
)

// walHeader is a record's payload length (u32) and the CRC-32C (u32) of
// the file's generation, the length and the payload. The CRC covers the
// length so that a tail of zeroes (a file extended but never written) is
// never a valid record, and the generation so that a record left from an
// earlier use of a recycled file is never one either.
const walHeader = 8

// A WAL file starts with walMagic and its generation (u64): walFileHeader
// bytes. A file without the magic is the first format (no file header, no
// generation in the CRC), still read at Open.
const walFileHeader = 16

var walMagic = [8]byte{'c', 'h', 'a', 't', 'd', 'W', 'A', 'L'}

// How far the active WAL file is kept ahead of its records with real
// blocks (see wal.grow): at least walMinAlloc past them and up to twice
// what they use, and no further than walMaxAlloc in all.
const (
	walMinAlloc = 1 << 20
	walMaxAlloc = 64 << 20
)

// grow writes walGrowChunk bytes of zeroes per step, at most walGrowSteps
// steps per call, so that the checkpointer goes back to its other work
// between calls.
const (
	walGrowChunk = 128 << 10
	walGrowSteps = 16
)

// walChecksum is the CRC of a record of the first format: its length
// bytes, then its payload.
func walChecksum(length, payload []byte) uint32 {
	return walSum(nil, length, payload)
}

// walSum is the CRC of a record: the generation bytes (none in the first
// format), the length bytes, the payload.
func walSum(gen, length, payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, gen)
	c = crc32.Update(c, castagnoli, length)
	return crc32.Update(c, castagnoli, payload)
}

// maxWALRecord bounds one record's payload; a header claiming more is a
// torn or garbage tail.
const maxWALRecord = 1 << 30

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errWALBroken is returned by Apply after a rotation of the WAL failed
// half-way and could not be undone: which file holds which records is
// unknown, so nothing more is accepted until a restart replays the log.
var errWALBroken = errors.New("storage: the write-ahead log failed; restart chatd to recover")

// hotOnly reports whether b holds only what the WAL carries: Messages,
// Summaries, Reads, Records and DelRecords.
func hotOnly(b *chat.Batch) bool {
	return len(b.Apps)+len(b.Users)+len(b.Tokens)+len(b.DelTokens)+len(b.DelUserTokens)+
		len(b.Sessions)+len(b.Members)+len(b.DelMembers)+
		len(b.Restrictions)+len(b.DelRestrictions)+len(b.DelUsers) == 0
}

// appendWALRecord appends b's hot changes as one record of the first
// format.
func appendWALRecord(dst []byte, b *chat.Batch) []byte { return encodeWALRecord(dst, b, nil) }

// encodeWALRecord appends b's Messages, Summaries, Reads and (when it has
// any) Records and DelRecords as one record whose CRC covers gen (8 bytes;
// nil for the first format). A batch without records is encoded exactly
// as before records rode the WAL: the records section is optional and
// trails the payload.
func encodeWALRecord(dst []byte, b *chat.Batch, gen []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, walHeader)...)
	dst = binary.AppendUvarint(dst, uint64(len(b.Messages)))
	for i := range b.Messages {
		m := &b.Messages[i]
		dst = appendU64(dst, uint64(m.Session))
		dst = binary.AppendUvarint(dst, m.Seq)
		// The value's length, computed up front so that the value is
		// encoded once, straight into dst (the round-trip test checks it).
		n := 1 + uvarintLen(len(m.App)) + len(m.App) + uvarintLen(len(m.From)) + len(m.From) +
			uvarintLen(len(m.Type)) + len(m.Type) + uvarintLen(len(m.CID)) + len(m.CID) +
			varintLen(m.CreatedAt) + uvarintLen(len(m.Content)) + len(m.Content)
		dst = binary.AppendUvarint(dst, uint64(n))
		dst = appendMessage(dst, m)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b.Summaries)))
	for i := range b.Summaries {
		sm := &b.Summaries[i]
		dst = appendU64(dst, uint64(sm.Session))
		dst = binary.AppendUvarint(dst, sm.Seq)
		dst = binary.AppendVarint(dst, sm.At)
		dst = appendStr(dst, sm.From)
		dst = appendStr(dst, sm.Type)
		dst = appendStr(dst, sm.Preview)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b.Reads)))
	for i := range b.Reads {
		r := &b.Reads[i]
		dst = appendU64(dst, uint64(r.Session))
		dst = appendStr(dst, r.UID)
		dst = binary.AppendUvarint(dst, r.Seq)
	}
	if len(b.Records)+len(b.DelRecords) > 0 {
		dst = binary.AppendUvarint(dst, uint64(len(b.Records)))
		for i := range b.Records {
			r := &b.Records[i]
			dst = appendStr(dst, r.Kind)
			dst = appendStr(dst, r.Key)
			dst = appendStr(dst, r.Value)
		}
		dst = binary.AppendUvarint(dst, uint64(len(b.DelRecords)))
		for i := range b.DelRecords {
			k := &b.DelRecords[i]
			dst = appendStr(dst, k.Kind)
			dst = appendStr(dst, k.Key)
		}
	}
	payload := dst[start+walHeader:]
	binary.BigEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(dst[start+4:], walSum(gen, dst[start:start+4], payload))
	return dst
}

func uvarintLen(n int) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], uint64(n))
}

func varintLen(n int64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutVarint(b[:], n)
}

// decodeWALPayload appends one record's changes to b, copying everything
// out of p.
func decodeWALPayload(p []byte, b *chat.Batch) bool {
	r := reader{b: p}
	n := r.uvarint()
	for range n {
		m := chat.Message{Session: chat.SessionID(r.u64())}
		m.Seq = r.uvarint()
		v := r.raw()
		if r.bad || !decodeMessage(v, &m) {
			return false
		}
		b.Messages = append(b.Messages, m)
	}
	n = r.uvarint()
	for range n {
		if r.bad {
			return false
		}
		sm := chat.Summary{Session: chat.SessionID(r.u64())}
		sm.Seq, sm.At = r.uvarint(), r.varint()
		sm.From, sm.Type, sm.Preview = r.str(), r.str(), r.str()
		b.Summaries = append(b.Summaries, sm)
	}
	n = r.uvarint()
	for range n {
		if r.bad {
			return false
		}
		rm := chat.ReadMark{Session: chat.SessionID(r.u64())}
		rm.UID = r.str()
		rm.Seq = r.uvarint()
		b.Reads = append(b.Reads, rm)
	}
	if r.bad {
		return false
	}
	if len(r.b) == 0 {
		return true // no records section: a batch without records, or a record from before they rode the WAL
	}
	n = r.uvarint()
	for range n {
		if r.bad {
			return false
		}
		rec := chat.Record{Kind: r.str()}
		rec.Key = r.bytes()
		rec.Value = r.raw()
		if rec.Value != nil {
			rec.Value = append([]byte{}, rec.Value...)
		}
		if !chat.ValidKind(rec.Kind) || !chat.ValidRecordKey(rec.Key) {
			return false
		}
		b.Records = append(b.Records, rec)
	}
	n = r.uvarint()
	for range n {
		if r.bad {
			return false
		}
		k := chat.RecordKey{Kind: r.str()}
		k.Key = r.bytes()
		if !chat.ValidKind(k.Kind) || !chat.ValidRecordKey(k.Key) {
			return false
		}
		b.DelRecords = append(b.DelRecords, k)
	}
	return r.end()
}

// readWAL appends the changes of every complete record of the WAL file at
// path to b, in order, and returns how many records it read (see
// readWALEach). One batch cannot keep the order of record puts and
// deletes across WAL records (a batch applies all its puts before its
// deletes), so recovery uses readWALEach; readWAL is for tests.
func readWAL(path string, b *chat.Batch) (int, error) {
	return readWALEach(path, func(rb *chat.Batch) {
		b.Messages = append(b.Messages, rb.Messages...)
		b.Summaries = append(b.Summaries, rb.Summaries...)
		b.Reads = append(b.Reads, rb.Reads...)
		b.Records = append(b.Records, rb.Records...)
		b.DelRecords = append(b.DelRecords, rb.DelRecords...)
	})
}

// readWALEach calls fn with the changes of every complete record of the
// WAL file at path, in order, and returns how many records it read. The
// batch is reused for the next record: fn copies what it keeps (the
// batch's strings and byte slices are its own, not the file's). It stops
// at the first incomplete record or bad CRC: that tail was being written
// when the process stopped, so its Apply never returned. A missing file
// reads as empty. A record whose CRC matches but does not decode is
// corruption.
func readWALEach(path string, fn func(b *chat.Batch)) (int, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	var gen []byte
	if len(data) >= walFileHeader && [8]byte(data[:8]) == walMagic {
		gen, data = data[8:16], data[walFileHeader:]
	}
	records := 0
	var b chat.Batch
	for len(data) >= walHeader {
		n := binary.BigEndian.Uint32(data)
		sum := binary.BigEndian.Uint32(data[4:])
		if n == 0 || n > maxWALRecord || uint64(len(data)-walHeader) < uint64(n) {
			break // no record is empty: it holds at least three counts
		}
		payload := data[walHeader : walHeader+int(n)]
		if walSum(gen, data[:4], payload) != sum {
			break
		}
		b = chat.Batch{Messages: b.Messages[:0], Summaries: b.Summaries[:0], Reads: b.Reads[:0],
			Records: b.Records[:0], DelRecords: b.DelRecords[:0]}
		if !decodeWALPayload(payload, &b) {
			return records, fmt.Errorf("%s record %d: %w", path, records+1, ErrCorrupt)
		}
		fn(&b)
		records++
		data = data[walHeader+int(n):]
	}
	return records, nil
}

// wal is the open active log file and the spare. Owned by Apply under
// Bolt.applyMu (append), and by the checkpointer, which rotates it while
// holding applyMu and ckptMu and prepares the spare under ckptMu (spare,
// spareGen, maxGen are only touched under ckptMu).
type wal struct {
	f      *os.File
	path   string  // active file
	frozen string  // the frozen file's name while a checkpoint runs
	spare  string  // the prepared spare file's name
	gen    [8]byte // generation of f, covered by every record's CRC
	size   int64   // bytes of file header and complete records in f
	buf    []byte  // scratch for one record
	noSync bool
	broken bool // a rotation could not be undone: refuse further appends
	// needDirSync: a rotation renamed files but could not sync the
	// folder; append syncs it before the next record.
	needDirSync bool

	hasSpare bool   // spare holds a file stamped with spareGen, synced
	spareGen uint64 // generation written into the spare's header
	maxGen   uint64 // the highest generation handed out

	// Growing the active file ahead of its records (grow): alloc is how
	// many bytes of the active file are real, synced blocks (written by
	// grow and rotate, both under ckptMu; read by wantsGrowth under
	// applyMu); spareAlloc is the same of the spare (under ckptMu);
	// noGrow is set when growing failed for the active file, so that a
	// full disk is not retried on every append (under ckptMu; rotate
	// clears it).
	alloc      atomic.Int64
	spareAlloc int64
	noGrow     bool
}

// openWAL creates (truncating) the active log file with generation 1 and
// makes it and its name durable; a spare left by an earlier run is
// deleted.
func openWAL(path string, noSync bool) (*wal, error) {
	base := path[:len(path)-len(walSuffix)]
	w := &wal{path: path, frozen: base + walFrozenSuffix, spare: base + walSpareSuffix, noSync: noSync, maxGen: 1}
	if err := os.Remove(w.spare); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove %s: %w", w.spare, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	w.f = f
	// The truncation must be durable before anything is committed to
	// bbolt directly, or a crash could bring old records back.
	if err := w.stamp(f, 1); err != nil {
		f.Close()
		return nil, err
	}
	if err := w.syncDir(); err != nil {
		f.Close()
		return nil, err
	}
	w.gen = genBytes(1)
	w.size = walFileHeader
	w.alloc.Store(walFileHeader)
	return w, nil
}

func genBytes(gen uint64) [8]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], gen)
	return b
}

// stamp writes the file header for gen at the start of f and syncs it:
// every record already in f stops counting.
func (w *wal) stamp(f *os.File, gen uint64) error {
	var h [walFileHeader]byte
	copy(h[:], walMagic[:])
	binary.BigEndian.PutUint64(h[8:], gen)
	if _, err := f.WriteAt(h[:], 0); err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if !w.noSync {
		if err := datasync(f); err != nil {
			return fmt.Errorf("sync %s: %w", f.Name(), err)
		}
	}
	return nil
}

// append writes b as one record at the end of the complete ones and syncs
// it. A failed write leaves at most a torn record there, which the next
// append overwrites (and which reading would stop at).
//
// A failed sync is handled the same way, and not by syncing again: after
// a failed fsync the kernel may have dropped the record's dirty pages or
// marked them clean, so a second fsync can succeed without the record
// ever reaching the disk. The record was never acknowledged (Apply
// failed), and the next append rewrites the whole region from the same
// offset, which dirties every page of it again, so what that append's
// sync reports covers its own bytes. The records before it were synced
// by earlier appends whose sync succeeded; the page they share with the
// new record holds their bytes whether the kernel kept it in memory or
// reads it back from the disk. A full disk (ENOSPC from a write or a
// delayed allocation at sync) therefore only fails the Applies made while
// it lasts.
func (w *wal) append(b *chat.Batch) error {
	if w.broken {
		return errWALBroken
	}
	if w.needDirSync {
		// A rotation could not sync the folder: records must not go
		// into a file whose name a crash could undo.
		if err := w.syncDir(); err != nil {
			return fmt.Errorf("storage: write-ahead log: %w", err)
		}
		w.needDirSync = false
	}
	w.buf = encodeWALRecord(w.buf[:0], b, w.gen[:])
	if _, err := w.f.WriteAt(w.buf, w.size); err != nil {
		return fmt.Errorf("storage: write-ahead log: %w", err)
	}
	if !w.noSync {
		if err := datasync(w.f); err != nil {
			return fmt.Errorf("storage: write-ahead log sync: %w", err)
		}
	}
	w.size += int64(len(w.buf))
	if cap(w.buf) > maxArenaKeep {
		w.buf = nil
	}
	return nil
}

// wantsGrowth reports whether the active file's real blocks end less
// than walMinAlloc past its records (so that appends would soon extend
// the file) and it may still grow. Called by append's caller, under
// applyMu.
func (w *wal) wantsGrowth() bool {
	a := w.alloc.Load()
	return a < walMaxAlloc && w.size+walMinAlloc > a
}

// growTarget is the size grow extends the active file to when its records
// use used bytes: walMinAlloc past them at least, twice them if more, at
// most walMaxAlloc.
func growTarget(used int64) int64 {
	return min(max(2*used, used+walMinAlloc), walMaxAlloc)
}

// grow writes zeroes past the end of the active file's real blocks (and
// past its records), walGrowChunk bytes at a time, each chunk synced
// before the next, until the file reaches growTarget of what its records
// use, or after steps chunks (more reports that it stopped short). After
// each chunk it calls pause with the time the chunk took; pause sleeps to
// pace the disk, or returns false to stop now. The caller holds ckptMu
// (so no rotation runs); appends go on meanwhile.
//
// Why: appending past a file's end makes every fdatasync write the
// file's size and block allocation too (on ext4 without a journal, the
// inode and the allocation maps), and preallocating a whole file at once
// (16 MB of zeroes and one sync, when the first spare was made) stalled
// the WAL syncs queued behind it for tens of milliseconds. Growing in
// small synced steps makes a WAL sync wait for at most one step. Zeroes,
// not fallocate: real blocks, not unwritten extents, so that overwriting
// them later changes no file metadata and a data sync stays one write.
//
// Each chunk is written under applyMu at or past the records' end, so
// zeroes never land on a record; records written later overwrite zeroes,
// which is what the space is for. The sync runs without applyMu. The
// chunks go through a descriptor of grow's own: a failed sync here is
// still reported to the next sync of append's descriptor (Linux reports a
// writeback error to every descriptor open when it happened), so a record
// is never acknowledged on the strength of a sync whose error grow
// consumed. A failed open, write or sync sets noGrow until the next
// rotation: growing is an optimisation, and append extends the file
// itself.
func (w *wal) grow(applyMu *sync.Mutex, steps int, pause func(time.Duration) bool) (more bool, err error) {
	if w.noGrow {
		return false, nil
	}
	f, err := os.OpenFile(w.path, os.O_RDWR, 0)
	if err != nil {
		w.noGrow = true
		return false, fmt.Errorf("grow %s: %w", w.path, err)
	}
	defer f.Close()
	for step := 0; ; step++ {
		applyMu.Lock()
		off := max(w.alloc.Load(), w.size) // past the size, appends made it real
		target := growTarget(w.size)
		if w.broken || off >= target || step == steps {
			applyMu.Unlock()
			w.alloc.Store(off)
			return !w.broken && off < target, nil
		}
		start := time.Now()
		n := min(walGrowChunk, target-off)
		_, err := f.WriteAt(zeroes[:n], off)
		applyMu.Unlock()
		if err == nil && !w.noSync {
			err = datasync(f)
		}
		if err != nil {
			w.noGrow = true
			return false, fmt.Errorf("grow %s: %w", w.path, err)
		}
		w.alloc.Store(off + n)
		if !pause(time.Since(start)) {
			return off+n < target, nil
		}
	}
}

// rotate renames the active file to the frozen name and makes the spare
// (made first if there is none) the active one. Every step that can fail
// for lack of space (making and stamping the spare, opening it) comes
// before the first rename, and a failed second rename is undone, so a
// failed rotation leaves the log as it was and the next checkpoint
// retries it; only a rename that cannot be undone breaks the log. If the
// folder cannot be synced afterwards, append syncs it before writing the
// next record.
func (w *wal) rotate() error {
	if w.broken {
		return errWALBroken
	}
	if !w.hasSpare {
		if err := w.makeSpare(); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(w.spare, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("rotate: open %s: %w", w.spare, err)
	}
	if err := os.Rename(w.path, w.frozen); err != nil {
		f.Close()
		return fmt.Errorf("rotate %s: %w", w.path, err)
	}
	if err := os.Rename(w.spare, w.path); err != nil {
		f.Close()
		if uerr := os.Rename(w.frozen, w.path); uerr != nil {
			w.broken = true
			return fmt.Errorf("rotate %s: %w; renaming %s back: %v (%w)", w.spare, err, w.frozen, uerr, errWALBroken)
		}
		return fmt.Errorf("rotate %s: %w", w.spare, err)
	}
	// Every record in the old file was synced by append.
	w.f.Close()
	w.hasSpare = false
	w.f, w.gen, w.size = f, genBytes(w.spareGen), walFileHeader
	w.alloc.Store(w.spareAlloc)
	w.noGrow = false
	if err := w.syncDir(); err != nil {
		w.needDirSync = true
	}
	return nil
}

// makeSpare creates the spare file stamped with a new generation (synced).
// On failure it removes what it made and changes nothing else.
func (w *wal) makeSpare() error {
	gen := w.maxGen + 1
	f, err := os.OpenFile(w.spare, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", w.spare, err)
	}
	err = w.stamp(f, gen)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", w.spare, cerr)
	}
	if err != nil {
		os.Remove(w.spare)
		return err
	}
	w.maxGen = gen
	w.hasSpare, w.spareGen, w.spareAlloc = true, gen, walFileHeader
	return nil
}

// dropFrozen retires the frozen file once a checkpoint has written it to
// bbolt: it becomes the spare, stamped with a new generation (so none of
// its records can ever be replayed again, whatever its name after a
// crash), keeping its size: grow made it real blocks up to twice what
// its records used, so the next active file is written in place from the
// start (and grow extends it further if that is not enough). Called by
// the checkpointer under ckptMu, without applyMu: Applies go on
// meanwhile.
func (w *wal) dropFrozen() error {
	if w.hasSpare {
		if err := os.Remove(w.frozen); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", w.frozen, err)
		}
		return w.syncDir()
	}
	if err := os.Rename(w.frozen, w.spare); err != nil {
		return fmt.Errorf("keep %s: %w", w.frozen, err)
	}
	f, err := os.OpenFile(w.spare, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", w.spare, err)
	}
	defer f.Close()
	gen := w.maxGen + 1
	// The stamp (synced) comes first: from here on the old records are
	// dead under any name.
	if err := w.stamp(f, gen); err != nil {
		return err
	}
	w.maxGen = gen
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", w.spare, err)
	}
	// Every byte of it is a real, synced block: records synced by append,
	// zeroes by grow.
	w.hasSpare, w.spareGen, w.spareAlloc = true, gen, fi.Size()
	return nil
}

// zeroes is what grow writes.
var zeroes = make([]byte, walGrowChunk)

// close closes and deletes the active and spare files; the caller has
// written everything in them to bbolt.
func (w *wal) close() error {
	err := w.f.Close()
	for _, p := range []string{w.path, w.spare} {
		if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = rerr
		}
	}
	w.hasSpare = false
	if serr := w.syncDir(); serr != nil && err == nil {
		err = serr
	}
	return err
}

func (w *wal) syncDir() error {
	if w.noSync {
		return nil
	}
	return syncDir(filepath.Dir(w.path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}
