package storage

import (
	"bytes"
	"context"
	"fmt"

	"chatd/chat"

	bolt "go.etcd.io/bbolt"
)

// Domain records (chat/records.go) live in the bucket "records", one
// nested bucket per kind, key → value as given. A batch with records is
// never hot (hotOnly), so records are always in bbolt, never only in an
// overlay: reads need no merge.

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

func checkRecordKey(kind string, key []byte) error {
	if !chat.ValidKind(kind) {
		return fmt.Errorf("storage: invalid record kind %q", kind)
	}
	if !chat.ValidRecordKey(key) {
		return fmt.Errorf("storage: record %s: key of %d bytes (1 to %d)", kind, len(key), chat.MaxRecordKey)
	}
	return nil
}

// Record returns the value of (kind, key).
func (s *Bolt) Record(_ context.Context, kind string, key []byte) ([]byte, error) {
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

// ScanRecords lists records of kind in key order; see chat.Store.
func (s *Bolt) ScanRecords(_ context.Context, kind string, prefix, after []byte, limit int, reverse bool) ([]chat.Record, error) {
	var out []chat.Record
	err := s.db.View(func(tx *bolt.Tx) error {
		kb := tx.Bucket(bRecords).Bucket([]byte(kind))
		if kb == nil {
			return nil
		}
		c := kb.Cursor()
		var k, v []byte
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
			end := after
			if p := prefixEnd(prefix); end == nil || (p != nil && bytes.Compare(p, end) < 0) {
				end = p
			}
			if end == nil {
				k, v = c.Last()
			} else if k, v = c.Seek(end); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil; k, v = stepCursor(c, reverse) {
			if !bytes.HasPrefix(k, prefix) {
				break
			}
			if !chat.InRecordRange(k, prefix, after, reverse) {
				continue // only the equal key at the start of a reverse walk
			}
			out = append(out, chat.Record{
				Kind:  kind,
				Key:   append([]byte(nil), k...),
				Value: append(make([]byte, 0, len(v)), v...),
			})
			if limit > 0 && len(out) == limit {
				break
			}
		}
		return nil
	})
	return out, err
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
