package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"chatd/chat"
)

// Record returns the value of (kind, key); see chat.Store.
func (s *Store) Record(ctx context.Context, kind string, key []byte) ([]byte, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM records WHERE kind = $1 AND key = $2`, kind, nonNil(key)).Scan(&v)
	if err != nil {
		return nil, notFound("record "+kind, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// ScanRecords lists records of kind in key order; see chat.Store. The
// prefix becomes a key range (prefix ≤ key < the prefix's successor), so
// the scan walks the primary key's index.
func (s *Store) ScanRecords(ctx context.Context, kind string, prefix, after []byte, limit int, reverse bool) ([]chat.Record, error) {
	q := `SELECT key, value FROM records WHERE kind = $1`
	args := []any{kind}
	arg := func(cond string, v []byte) {
		args = append(args, nonNil(v))
		q += fmt.Sprintf(" AND key %s $%d", cond, len(args))
	}
	if len(prefix) > 0 {
		arg(">=", prefix)
		if end := successor(prefix); end != nil {
			arg("<", end)
		}
	}
	if after != nil {
		if reverse {
			arg("<", after)
		} else {
			arg(">", after)
		}
	}
	q += " ORDER BY key"
	if reverse {
		q += " DESC"
	}
	args = append(args, limitParam(limit))
	q += fmt.Sprintf(" LIMIT $%d", len(args))
	rows, _ := s.pool.Query(ctx, q, args...)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (chat.Record, error) {
		rec := chat.Record{Kind: kind}
		err := r.Scan(&rec.Key, &rec.Value)
		if rec.Value == nil {
			rec.Value = []byte{}
		}
		return rec, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: records %s: %w", kind, err)
	}
	return out, nil
}

// successor is the least key greater than every key starting with
// prefix, or nil when there is none (prefix is all 0xff).
func successor(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
