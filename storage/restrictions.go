package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"chatd/chat"
)

// Bans and mutes (chat.Restriction) live in their own bucket:
//
//	restrictions    str(app) str(uid) u8(kind)       Restriction record
//
// They are rare and change only through the server API, so a batch that
// carries them is a direct (non-WAL) one, like users and tokens. The
// bucket is created on open when missing, so a data file written before
// it existed opens unchanged (same schema version; an older chatd ignores
// the bucket).
var bRestrictions = []byte("restrictions")

// appendRestrictionKey appends str(app) str(uid) u8(kind).
func appendRestrictionKey(dst []byte, k chat.RestrictionKey) []byte {
	return append(appendUserKey(dst, k.App, k.UID), byte(k.Kind))
}

// Restriction: 0x01 str(App) str(UID) u8(Kind) varint(Until) str(Reason)
// varint(CreatedAt).
func appendRestriction(dst []byte, r *chat.Restriction) []byte {
	dst = append(dst, recordV1)
	dst = appendStr(dst, r.App)
	dst = appendStr(dst, r.UID)
	dst = append(dst, byte(r.Kind))
	dst = binary.AppendVarint(dst, r.Until)
	dst = appendStr(dst, r.Reason)
	return binary.AppendVarint(dst, r.CreatedAt)
}

func decodeRestriction(v []byte, r *chat.Restriction) bool {
	rd := reader{b: v}
	rd.version()
	r.App, r.UID = rd.str(), rd.str()
	r.Kind = chat.RestrictionKind(rd.byte())
	r.Until = rd.varint()
	r.Reason = rd.str()
	r.CreatedAt = rd.varint()
	return rd.end()
}

// putRestrictions applies b's Restrictions and DelRestrictions (after
// Reads, as chat.Store orders them).
func (w *writer) putRestrictions(tx *bolt.Tx, b *chat.Batch) error {
	if len(b.Restrictions)+len(b.DelRestrictions) == 0 {
		return nil
	}
	bk := tx.Bucket(bRestrictions)
	for i := range b.Restrictions {
		r := &b.Restrictions[i]
		start := len(w.arena)
		w.arena = appendRestriction(w.arena, r)
		w.key = appendRestrictionKey(w.key[:0], r.Key())
		if err := bk.Put(w.key, w.since(start)); err != nil {
			return fmt.Errorf("put restriction %q: %w", r.UID, err)
		}
	}
	for _, k := range b.DelRestrictions {
		w.key = appendRestrictionKey(w.key[:0], k)
		if err := bk.Delete(w.key); err != nil {
			return fmt.Errorf("delete restriction %q: %w", k.UID, err)
		}
	}
	return nil
}

// Restrictions lists every stored ban and mute.
func (s *Bolt) Restrictions(_ context.Context) ([]chat.Restriction, error) {
	var out []chat.Restriction
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bRestrictions).ForEach(func(k, v []byte) error {
			var r chat.Restriction
			if !decodeRestriction(v, &r) {
				return corrupt("restriction")
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// CountUsers counts app's users (a scan of its users keys; the core calls
// it once per app, to start its count for AppLimits).
func (s *Bolt) CountUsers(_ context.Context, app string) (int, error) {
	n := 0
	prefix := appendStr(nil, app)
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bUsers).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, err
}

// CountGroups counts app's group sessions (a scan of every session; the
// core calls it once per app, to start its count for AppLimits).
func (s *Bolt) CountGroups(_ context.Context, app string) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bSessions).ForEach(func(_, v []byte) error {
			r := reader{b: v}
			r.version()
			a := r.raw()
			kind := chat.Kind(r.byte())
			if r.bad {
				return corrupt("session")
			}
			if kind == chat.KindGroup && string(a) == app {
				n++
			}
			return nil
		})
	})
	return n, err
}
