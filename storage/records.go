package storage

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"chatd/chat"

	bolt "go.etcd.io/bbolt"
)

// Domain records (chat/records.go) live in the bucket "records", one
// nested bucket per kind, key → value as given. A hot batch's records go
// through the WAL into the active overlay (a put's value or a delete's
// tombstone per key), and a checkpoint writes them into bbolt
// (putRecordOps); a direct batch's records go straight into bbolt
// (putRecords). Reads merge the overlays over bbolt.

// putRecordOps writes a checkpoint's record changes (recordOps: key order
// per kind). The values belong to the frozen overlay, which outlives the
// transaction.
func (w *writer) putRecordOps(tx *bolt.Tx, ops []recordOp) error {
	root := tx.Bucket(bRecords)
	var kb *bolt.Bucket
	kind := ""
	for i := range ops {
		op := &ops[i]
		w.yield()
		if kb == nil || op.kind != kind {
			kind = op.kind
			if op.del {
				kb = root.Bucket([]byte(kind))
			} else {
				var err error
				if kb, err = root.CreateBucketIfNotExists([]byte(kind)); err != nil {
					return fmt.Errorf("storage: records %q: %w", kind, err)
				}
			}
		}
		w.key = append(w.key[:0], op.key...)
		if op.del {
			if kb == nil {
				continue // nothing of this kind in bbolt (yet)
			}
			if err := kb.Delete(w.key); err != nil {
				return fmt.Errorf("storage: delete record %s/%x: %w", kind, op.key, err)
			}
			continue
		}
		v := op.val
		if v == nil {
			v = empty
		}
		if err := kb.Put(w.key, v); err != nil {
			return fmt.Errorf("storage: put record %s/%x: %w", kind, op.key, err)
		}
	}
	return nil
}

// putRecords applies b.Records, then b.DelRecords.
func (w *writer) putRecords(tx *bolt.Tx, b *chat.Batch) error {
	if len(b.Records)+len(b.DelRecords) == 0 {
		return nil
	}
	root := tx.Bucket(bRecords)
	for i := range b.Records {
		r := &b.Records[i]
		if err := checkRecordKey(r.Kind, r.Key); err != nil {
			return err
		}
		kb, err := root.CreateBucketIfNotExists([]byte(r.Kind))
		if err != nil {
			return fmt.Errorf("storage: records %q: %w", r.Kind, err)
		}
		v := r.Value
		if v == nil {
			v = empty
		}
		// bbolt keeps v until the commit, which happens inside Apply,
		// while the batch is still the caller's: no copy needed.
		if err := kb.Put(r.Key, v); err != nil {
			return fmt.Errorf("storage: put record %s/%x: %w", r.Kind, r.Key, err)
		}
	}
	for _, k := range b.DelRecords {
		if err := checkRecordKey(k.Kind, k.Key); err != nil {
			return err
		}
		kb := root.Bucket([]byte(k.Kind))
		if kb == nil {
			continue
		}
		if err := kb.Delete(k.Key); err != nil {
			return fmt.Errorf("storage: delete record %s/%x: %w", k.Kind, k.Key, err)
		}
	}
	return nil
}

// checkRecords checks every record kind and key of b.
func checkRecords(b *chat.Batch) error {
	for i := range b.Records {
		if err := checkRecordKey(b.Records[i].Kind, b.Records[i].Key); err != nil {
			return err
		}
	}
	for _, k := range b.DelRecords {
		if err := checkRecordKey(k.Kind, k.Key); err != nil {
			return err
		}
	}
	return nil
}

func checkRecordKey(kind string, key []byte) error { return chat.CheckRecord("storage", kind, key) }

// Record returns the value of (kind, key): the active overlay's change
// to it, else the frozen overlay's, else bbolt's (a delete in an overlay
// hides bbolt's value).
func (s *Bolt) Record(_ context.Context, kind string, key []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, o := range [2]*overlay{s.active, s.frozen} {
		if o == nil {
			continue
		}
		if e, ok := o.record(kind, key); ok {
			if e.del {
				return nil, notFound("record " + kind)
			}
			return append(make([]byte, 0, len(e.val)), e.val...), nil
		}
	}
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		kb := tx.Bucket(bRecords).Bucket([]byte(kind))
		var v []byte
		if kb != nil {
			v = kb.Get(key)
		}
		if v == nil {
			return notFound("record " + kind)
		}
		out = append(make([]byte, 0, len(v)), v...)
		return nil
	})
	return out, err
}

// ScanRecords lists records of kind in key order; see chat.Store. It
// merges bbolt's records with the overlays' changes: an overlay's value
// replaces bbolt's, its delete hides it, and the active overlay's change
// wins over the frozen one's.
func (s *Bolt) ScanRecords(_ context.Context, kind string, prefix, after []byte, limit int, reverse bool) ([]chat.Record, error) {
	var out []chat.Record
	s.mu.RLock()
	defer s.mu.RUnlock()
	act := newOvScan(s.active, kind, prefix, after, reverse)
	frz := newOvScan(s.frozen, kind, prefix, after, reverse)
	// less reports whether key a comes before key b in the scan's order.
	less := func(a, b string) bool {
		if reverse {
			return a > b
		}
		return a < b
	}
	// nextOver returns the overlays' next change in scan order (active
	// over frozen on equal keys), or ok false when both are done.
	nextOver := func() (key string, e recEntry, ok bool) {
		ka, oka := act.peek()
		kf, okf := frz.peek()
		switch {
		case oka && (!okf || less(ka, kf)):
			return ka, act.take(), true
		case okf && (!oka || less(kf, ka)):
			return kf, frz.take(), true
		case oka: // equal keys
			frz.take()
			return ka, act.take(), true
		}
		return "", recEntry{}, false
	}
	emit := func(k string, v []byte) bool {
		out = append(out, chat.Record{
			Kind:  kind,
			Key:   []byte(k),
			Value: append(make([]byte, 0, len(v)), v...),
		})
		return limit > 0 && len(out) == limit
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		var c *bolt.Cursor
		var k, v []byte
		if kb := tx.Bucket(bRecords).Bucket([]byte(kind)); kb != nil {
			c = kb.Cursor()
			k, v = seekRecords(c, prefix, after, reverse)
		}
		// nextBolt moves to bbolt's next record in the scan's range; k is
		// nil when there is none.
		nextBolt := func() {
			for ; k != nil; k, v = stepCursor(c, reverse) {
				if !bytes.HasPrefix(k, prefix) {
					k = nil
					return
				}
				if chat.InRecordRange(k, prefix, after, reverse) {
					return
				}
			}
		}
		nextBolt()
		ek, e, ok := nextOver()
		for k != nil || ok {
			var done bool
			switch {
			case ok && (k == nil || less(ek, string(k))):
				if !e.del {
					done = emit(ek, e.val)
				}
				ek, e, ok = nextOver()
			case ok && ek == string(k): // the overlay's change wins
				if !e.del {
					done = emit(ek, e.val)
				}
				ek, e, ok = nextOver()
				k, v = stepCursor(c, reverse)
				nextBolt()
			default:
				done = emit(string(k), v)
				k, v = stepCursor(c, reverse)
				nextBolt()
			}
			if done {
				break
			}
		}
		return nil
	})
	return out, err
}

// seekRecords positions c at the first key of a scan (see ScanRecords),
// or past the range; the caller filters with chat.InRecordRange and stops
// at the first key without the prefix.
func seekRecords(c *bolt.Cursor, prefix, after []byte, reverse bool) (k, v []byte) {
	switch {
	case !reverse && after != nil && bytes.Compare(after, prefix) >= 0:
		k, v = c.Seek(after)
		if k != nil && bytes.Equal(k, after) {
			k, v = c.Next()
		}
	case !reverse:
		k, v = c.Seek(prefix)
	default:
		// Start at the first key past the range, then step back.
		end := scanEnd(prefix, after)
		if end == nil {
			k, v = c.Last()
		} else if k, v = c.Seek(end); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	}
	return k, v
}

// scanEnd is where a reverse scan starts from below: the smaller of after
// and the first key past the prefix (nil: the end of the kind).
func scanEnd(prefix, after []byte) []byte {
	end := after
	if p := prefixEnd(prefix); end == nil || (p != nil && bytes.Compare(p, end) < 0) {
		end = p
	}
	return end
}

// ovScan walks one overlay's changes to a kind within a scan's range, in
// the scan's order. The caller holds Bolt.mu.
type ovScan struct {
	rk            *recKind
	keys          []string
	i             int // next index into keys; walks down when reverse
	prefix, after []byte
	reverse       bool
}

func newOvScan(o *overlay, kind string, prefix, after []byte, reverse bool) *ovScan {
	sc := &ovScan{prefix: prefix, after: after, reverse: reverse, i: -1}
	if o == nil || o.recs[kind] == nil {
		return sc
	}
	sc.rk = o.recs[kind]
	sc.keys = sc.rk.sorted()
	search := func(x []byte) int {
		i, _ := slices.BinarySearch(sc.keys, string(x))
		return i
	}
	switch {
	case !reverse && after != nil && bytes.Compare(after, prefix) >= 0:
		sc.i = search(after)
	case !reverse:
		sc.i = search(prefix)
	default:
		if end := scanEnd(prefix, after); end == nil {
			sc.i = len(sc.keys) - 1
		} else {
			sc.i = search(end) - 1
		}
	}
	sc.skip()
	return sc
}

// skip moves past keys outside the range (only the key equal to after,
// at the start) and ends the walk at the first key without the prefix.
func (sc *ovScan) skip() {
	for sc.i >= 0 && sc.i < len(sc.keys) {
		k := sc.keys[sc.i]
		if !strings.HasPrefix(k, string(sc.prefix)) {
			sc.i = -1
			return
		}
		if chat.InRecordRange([]byte(k), sc.prefix, sc.after, sc.reverse) {
			return
		}
		sc.step()
	}
	sc.i = -1
}

func (sc *ovScan) step() {
	if sc.reverse {
		sc.i--
	} else {
		sc.i++
	}
}

// peek returns the current key, if the walk is not done.
func (sc *ovScan) peek() (string, bool) {
	if sc.i < 0 || sc.i >= len(sc.keys) {
		return "", false
	}
	return sc.keys[sc.i], true
}

// take returns the current key's change and moves on.
func (sc *ovScan) take() recEntry {
	e := sc.rk.m[sc.keys[sc.i]]
	sc.step()
	sc.skip()
	return e
}

func stepCursor(c *bolt.Cursor, reverse bool) ([]byte, []byte) {
	if reverse {
		return c.Prev()
	}
	return c.Next()
}

// prefixEnd is the first key after every key that starts with p, or nil
// when there is none (p empty or all 0xff).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
