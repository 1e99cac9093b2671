package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"chatd/chat"
)

// PruneMessages deletes app's messages created before `before` (unix
// ms), at most max in one bbolt transaction; see chat.Store. A call with
// from == 0 starts a pass and checkpoints first, so that messages still
// in the WAL and overlays are in bbolt and deleted there too (otherwise a
// later checkpoint would write them back). Messages acknowledged after
// that carry the clock's time then, later than the cutoff.
//
// Each message is found with a fresh Seek after a Delete: a bbolt
// cursor's Next after Delete can skip the following key.
func (s *Bolt) PruneMessages(_ context.Context, app string, before int64, from chat.SessionID, max int) (int, chat.SessionID, error) {
	if from == 0 {
		if err := s.checkpoint(); err != nil {
			return 0, 0, fmt.Errorf("storage: prune: %w", s.classify(err))
		}
	}
	deleted, next := 0, chat.SessionID(0)
	err := s.update(func(tx *bolt.Tx) error {
		deleted, next = 0, 0
		sc := tx.Bucket(bSessions).Cursor()
		mc := tx.Bucket(bMsgs).Cursor()
		for k, v := sc.Seek(appendU64(nil, uint64(from))); k != nil; k, v = sc.Next() {
			if len(k) != 8 || !sessionOfApp(v, app) {
				continue
			}
			prefix := k
			for mk, mv := mc.Seek(prefix); mk != nil && bytes.HasPrefix(mk, prefix); mk, mv = mc.Seek(prefix) {
				at, ok := messageCreatedAt(mv)
				if !ok {
					return corrupt(fmt.Sprintf("message %x", mk))
				}
				if at >= before {
					break
				}
				if max > 0 && deleted == max {
					next = chat.SessionID(binary.BigEndian.Uint64(k))
					return nil
				}
				if err := mc.Delete(); err != nil {
					return err
				}
				deleted++
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("storage: prune: %w", s.classify(err))
	}
	return deleted, next, nil
}

// sessionOfApp reports whether the Session record v belongs to app: its
// App field comes first, after the version byte.
func sessionOfApp(v []byte, app string) bool {
	r := reader{b: v}
	r.version()
	a := r.raw()
	return !r.bad && string(a) == app
}

// messageCreatedAt reads a Message record's CreatedAt: after the version
// byte and four strings (App, From, Type, CID).
func messageCreatedAt(v []byte) (int64, bool) {
	r := reader{b: v}
	r.messageVersion()
	for range 4 {
		r.raw()
	}
	at := r.varint()
	return at, !r.bad
}
