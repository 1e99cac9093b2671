package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"chatd/chat"
)

// The bytes of uploads on a cluster (chat.BlobStore; migration 0005): a
// row in blobs and the content in blob_chunks, BlobChunk bytes a row,
// streamed in and out a chunk at a time so that no file is ever whole in
// memory. A transfer holds a connection of the pool for its length; at
// most half the pool's connections transfer at once (the others wait),
// so the journal and the readers always find one.

var _ chat.BlobStore = (*Store)(nil)

// BlobChunk is the size of a blob's rows in blob_chunks (the last one
// may be shorter).
const BlobChunk = 1 << 20

// blobTurn waits for a transfer's turn; the returned func ends it.
func (s *Store) blobTurn(ctx context.Context) (func(), error) {
	select {
	case s.blobTurns <- struct{}{}:
		return func() { <-s.blobTurns }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// sqlPutBlob inserts a blob's row, or moves an existing one's stored_at
// to now; it returns whether it inserted (a new row's xmax is 0). A
// second node putting the same blob at once waits here for the first
// one's transaction: it then finds the whole blob, or none if the first
// rolled back.
const sqlPutBlob = `INSERT INTO blobs (app, id, size) VALUES ($1, $2, $3)
ON CONFLICT (app, id) DO UPDATE SET stored_at = now()
RETURNING xmax = 0`

// PutBlob implements chat.BlobStore in one transaction: the blob's row,
// then its chunks as r yields them.
func (s *Store) PutBlob(ctx context.Context, app, id string, size int64, r io.Reader) (bool, error) {
	done, err := s.blobTurn(ctx)
	if err != nil {
		return false, err
	}
	defer done()
	var created bool
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, sqlPutBlob, []byte(app), []byte(id), size).Scan(&created); err != nil || !created {
			return err
		}
		buf := make([]byte, BlobChunk)
		var total int64
		for n := int32(0); ; n++ {
			k, rerr := io.ReadFull(r, buf)
			if k > 0 {
				if _, err := tx.Exec(ctx, `INSERT INTO blob_chunks (app, id, n, data) VALUES ($1, $2, $3, $4)`,
					[]byte(app), []byte(id), n, buf[:k]); err != nil {
					return err
				}
				total += int64(k)
			}
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				break
			}
			if rerr != nil {
				return rerr
			}
		}
		if total != size {
			return fmt.Errorf("read %d bytes, want %d", total, size)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("pgstore: store blob %s of %s: %w", id, app, err)
	}
	return created, nil
}

// ReadBlob implements chat.BlobStore with one query whose rows (one
// chunk each) are written to w as they arrive.
func (s *Store) ReadBlob(ctx context.Context, app, id string, w io.Writer) (int64, error) {
	done, err := s.blobTurn(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	rows, err := s.pool.Query(ctx, `SELECT n, data FROM blob_chunks WHERE app = $1 AND id = $2 ORDER BY n`, []byte(app), []byte(id))
	if err != nil {
		return 0, fmt.Errorf("pgstore: read blob %s of %s: %w", id, app, err)
	}
	defer rows.Close()
	var total int64
	var want int32
	for rows.Next() {
		var n int32
		var data pgtype.DriverBytes // the driver's buffer, valid until Next
		if err := rows.Scan(&n, &data); err != nil {
			return total, fmt.Errorf("pgstore: read blob %s of %s: %w", id, app, err)
		}
		if n != want {
			return total, fmt.Errorf("pgstore: blob %s of %s lacks its chunk %d", id, app, want)
		}
		want++
		k, err := w.Write(data)
		total += int64(k)
		if err != nil {
			return total, err
		}
	}
	if err := rows.Err(); err != nil {
		return total, fmt.Errorf("pgstore: read blob %s of %s: %w", id, app, err)
	}
	if want == 0 {
		return 0, chat.ErrNotFound
	}
	return total, nil
}

// DeleteBlob implements chat.BlobStore: the row, and its chunks with it
// (ON DELETE CASCADE). A PutBlob of the same blob that moved stored_at
// first makes it delete nothing; one that comes after puts it again.
func (s *Store) DeleteBlob(ctx context.Context, app, id string, olderThan time.Duration) (bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM blobs WHERE app = $1 AND id = $2 AND stored_at <= now() - make_interval(secs => $3::float8)`,
		[]byte(app), []byte(id), olderThan.Seconds())
	if err != nil {
		return false, fmt.Errorf("pgstore: delete blob %s of %s: %w", id, app, err)
	}
	return tag.RowsAffected() > 0, nil
}

// BlobIDs implements chat.BlobStore.
func (s *Store) BlobIDs(ctx context.Context, app string, olderThan time.Duration) ([]string, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id FROM blobs WHERE app = $1 AND stored_at <= now() - make_interval(secs => $2::float8) ORDER BY id`,
		[]byte(app), olderThan.Seconds())
	ids, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var b []byte
		err := r.Scan(&b)
		return string(b), err
	})
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("pgstore: list blobs of %s: %w", app, err)
	}
	return ids, nil
}
