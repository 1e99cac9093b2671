package chat

import (
	"bytes"
	"context"
	"sort"
	"sync"
)

// TEMPORARY: the generic records API (RECORDS.md) is not on main yet. This
// shim gives the contacts domain the same calls, kept in memory, so the
// domain can be written and tested; it is replaced by the Store's records
// when main has them.

// Record is one domain record.
type Record struct {
	Kind  string
	Key   []byte
	Value []byte
}

// RecordKey names one record.
type RecordKey struct {
	Kind string
	Key  []byte
}

type recordShim struct {
	mu sync.Mutex
	m  map[string]map[string][]byte
}

func (c *Core) record(ctx context.Context, kind string, key []byte) ([]byte, error) {
	s := &c.recShim
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[kind][string(key)]
	if !ok {
		return nil, ErrNotFound
	}
	return append([]byte(nil), v...), nil
}

func (c *Core) scanRecords(ctx context.Context, kind string, prefix, after []byte, limit int, reverse bool) ([]Record, error) {
	s := &c.recShim
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for k, v := range s.m[kind] {
		if !bytes.HasPrefix([]byte(k), prefix) {
			continue
		}
		if after != nil && (!reverse && k <= string(after) || reverse && k >= string(after)) {
			continue
		}
		out = append(out, Record{Kind: kind, Key: []byte(k), Value: append([]byte(nil), v...)})
	}
	sort.Slice(out, func(i, j int) bool {
		if reverse {
			return string(out[i].Key) > string(out[j].Key)
		}
		return string(out[i].Key) < string(out[j].Key)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (c *Core) writeRecords(ctx context.Context, puts []Record, dels []RecordKey) error {
	s := &c.recShim
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]map[string][]byte{}
	}
	for _, r := range puts {
		if s.m[r.Kind] == nil {
			s.m[r.Kind] = map[string][]byte{}
		}
		s.m[r.Kind][string(r.Key)] = append([]byte(nil), r.Value...)
	}
	for _, d := range dels {
		delete(s.m[d.Kind], string(d.Key))
	}
	return nil
}
