package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"chatd/chat"
)

// The write-ahead log; see doc.go for the format and the recovery rules.

// walSuffix names the active WAL next to the data file; walFrozenSuffix
// names the WAL of the frozen overlay while a checkpoint writes it to bbolt.
const (
	walSuffix       = "-wal"
	walFrozenSuffix = "-wal.1"
)

// walHeader is a record's payload length (u32) and the CRC-32C (u32) of
// the length and the payload. The CRC covers the length so that a tail of
// zeroes (a file extended but never written) is never a valid record.
const walHeader = 8

// walChecksum is the CRC of a record: its length bytes, then its payload.
func walChecksum(length, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(length, castagnoli), castagnoli, payload)
}

// maxWALRecord bounds one record's payload; a header claiming more is a
// torn or garbage tail.
const maxWALRecord = 1 << 30

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errWALBroken is returned by Apply after the WAL could not be written or
// synced: what reached the disk is unknown, so nothing more is accepted
// until a restart replays the log.
var errWALBroken = errors.New("storage: the write-ahead log failed; restart chatd to recover")

// hotOnly reports whether b holds only what the WAL carries: Messages,
// Summaries and Reads.
func hotOnly(b *chat.Batch) bool {
	return len(b.Apps)+len(b.Users)+len(b.Tokens)+len(b.DelTokens)+len(b.DelUserTokens)+
		len(b.Sessions)+len(b.Members)+len(b.DelMembers) == 0
}

// appendWALRecord appends b's Messages, Summaries and Reads as one record.
func appendWALRecord(dst []byte, b *chat.Batch) []byte {
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
	payload := dst[start+walHeader:]
	binary.BigEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(dst[start+4:], walChecksum(dst[start:start+4], payload))
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
		if r.bad || len(r.b) < 8 {
			return false
		}
		m := chat.Message{Session: chat.SessionID(binary.BigEndian.Uint64(r.b))}
		r.b = r.b[8:]
		m.Seq = r.uvarint()
		v := r.raw()
		if r.bad || !decodeMessage(v, &m) {
			return false
		}
		b.Messages = append(b.Messages, m)
	}
	n = r.uvarint()
	for range n {
		if r.bad || len(r.b) < 8 {
			return false
		}
		sm := chat.Summary{Session: chat.SessionID(binary.BigEndian.Uint64(r.b))}
		r.b = r.b[8:]
		sm.Seq, sm.At = r.uvarint(), r.varint()
		sm.From, sm.Type, sm.Preview = r.str(), r.str(), r.str()
		b.Summaries = append(b.Summaries, sm)
	}
	n = r.uvarint()
	for range n {
		if r.bad || len(r.b) < 8 {
			return false
		}
		rm := chat.ReadMark{Session: chat.SessionID(binary.BigEndian.Uint64(r.b))}
		r.b = r.b[8:]
		rm.UID = r.str()
		rm.Seq = r.uvarint()
		b.Reads = append(b.Reads, rm)
	}
	return r.end()
}

// readWAL appends the changes of every complete record of the WAL file at
// path to b, in order, and returns how many records it read. It stops at
// the first incomplete record or bad CRC: that tail was being written when
// the process stopped, so its Apply never returned. A missing file reads
// as empty. A record whose CRC matches but does not decode is corruption.
func readWAL(path string, b *chat.Batch) (int, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	records := 0
	for len(data) >= walHeader {
		n := binary.BigEndian.Uint32(data)
		sum := binary.BigEndian.Uint32(data[4:])
		if n == 0 || n > maxWALRecord || uint64(len(data)-walHeader) < uint64(n) {
			break // no record is empty: it holds at least three counts
		}
		payload := data[walHeader : walHeader+int(n)]
		if walChecksum(data[:4], payload) != sum {
			break
		}
		if !decodeWALPayload(payload, b) {
			return records, fmt.Errorf("%s record %d: %w", path, records+1, ErrCorrupt)
		}
		records++
		data = data[walHeader+int(n):]
	}
	return records, nil
}

// wal is the open active log file. Owned by Apply under Bolt.applyMu (and
// by the checkpointer, which rotates it while holding applyMu).
type wal struct {
	f      *os.File
	path   string // active file
	frozen string // the frozen file's name while a checkpoint runs
	size   int64  // bytes of complete records in f
	buf    []byte // scratch for one record
	noSync bool
	broken bool // a write or sync failed: refuse further appends
}

// openWAL creates (truncating) the active log file and makes its name
// durable.
func openWAL(path string, noSync bool) (*wal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	w := &wal{f: f, path: path, frozen: path[:len(path)-len(walSuffix)] + walFrozenSuffix, noSync: noSync}
	if !noSync {
		// The truncation must be durable before anything is committed to
		// bbolt directly, or a crash could bring old records back.
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("sync %s: %w", path, err)
		}
	}
	if err := w.syncDir(); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// append writes b as one record and syncs it. On a failed write the file
// is cut back to its last complete record; if that or the sync fails the
// log is broken for good (what the disk holds is unknown).
func (w *wal) append(b *chat.Batch) error {
	if w.broken {
		return errWALBroken
	}
	w.buf = appendWALRecord(w.buf[:0], b)
	if _, err := w.f.Write(w.buf); err != nil {
		if terr := w.f.Truncate(w.size); terr != nil {
			w.broken = true
		} else if _, serr := w.f.Seek(w.size, io.SeekStart); serr != nil {
			w.broken = true
		}
		return fmt.Errorf("storage: write-ahead log: %w", err)
	}
	if !w.noSync {
		if err := w.f.Sync(); err != nil {
			w.broken = true
			return fmt.Errorf("storage: write-ahead log sync: %w (%w)", err, errWALBroken)
		}
	}
	w.size += int64(len(w.buf))
	if cap(w.buf) > maxArenaKeep {
		w.buf = nil
	}
	return nil
}

// rotate renames the active file to the frozen name and starts an empty
// active file; both names are made durable before it returns.
func (w *wal) rotate() error {
	if w.broken {
		return errWALBroken
	}
	if err := w.f.Close(); err != nil {
		w.broken = true
		return fmt.Errorf("close %s: %w", w.path, err)
	}
	if err := os.Rename(w.path, w.frozen); err != nil {
		w.broken = true
		return fmt.Errorf("rotate %s: %w", w.path, err)
	}
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		w.broken = true
		return fmt.Errorf("create %s: %w", w.path, err)
	}
	w.f, w.size = f, 0
	if err := w.syncDir(); err != nil {
		w.broken = true
		return err
	}
	return nil
}

// dropFrozen deletes the frozen file, durably: after this no restart can
// replay it over later direct writes.
func (w *wal) dropFrozen() error {
	if err := os.Remove(w.frozen); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", w.frozen, err)
	}
	return w.syncDir()
}

// close closes and deletes the active file; the caller has written
// everything in it to bbolt.
func (w *wal) close() error {
	err := w.f.Close()
	if rerr := os.Remove(w.path); rerr != nil && err == nil {
		err = rerr
	}
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
