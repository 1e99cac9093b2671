package pgstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"chatd/internal/testpg"
	"chatd/pgstore"
)

// TestBlobChunksAndTouch: a blob is stored in chunks of BlobChunk bytes;
// two nodes putting the same blob at once store it once, whole; a put of
// a stored blob moves its stored time, so that a garbage collection that
// found it old and unreferenced before the upload no longer deletes it.
func TestBlobChunksAndTouch(t *testing.T) {
	ctx := context.Background()
	dsn := testpg.DSN(t)
	s := openShared(t, dsn, 2)
	t.Cleanup(func() { s[0].Close(); s[1].Close() })
	db := sqlConn(t, dsn)
	id := string(bytes.Repeat([]byte("a"), 64))
	data := make([]byte, 2*pgstore.BlobChunk+5)
	rand.Read(data)

	var wg sync.WaitGroup
	created := make([]bool, 2)
	for i := range s {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if created[i], err = s[i].PutBlob(ctx, "app1", id, int64(len(data)), bytes.NewReader(data)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if created[0] == created[1] {
		t.Fatalf("two concurrent puts: created %v, want exactly one", created)
	}
	var chunks, size int64
	if err := db.QueryRow(ctx, `SELECT count(*), sum(length(data)) FROM blob_chunks WHERE id = $1`, []byte(id)).Scan(&chunks, &size); err != nil {
		t.Fatal(err)
	}
	if chunks != 3 || size != int64(len(data)) {
		t.Fatalf("%d chunks of %d bytes, want 3 of %d", chunks, size, len(data))
	}
	var got bytes.Buffer
	if _, err := s[1].ReadBlob(ctx, "app1", id, &got); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("read back %d bytes (%v)", got.Len(), err)
	}

	if _, err := db.Exec(ctx, `UPDATE blobs SET stored_at = now() - interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	if ids, err := s[0].BlobIDs(ctx, "app1", 30*time.Minute); err != nil || len(ids) != 1 {
		t.Fatalf("BlobIDs of an hour-old blob: %v %v", ids, err)
	}
	if c, err := s[1].PutBlob(ctx, "app1", id, int64(len(data)), bytes.NewReader(nil)); c || err != nil {
		t.Fatalf("put of a stored blob: created %v, %v", c, err)
	}
	if ok, err := s[0].DeleteBlob(ctx, "app1", id, 30*time.Minute); ok || err != nil {
		t.Fatalf("a blob put again was deleted as old: %v %v", ok, err)
	}
	if ok, err := s[0].DeleteBlob(ctx, "app1", id, 0); !ok || err != nil {
		t.Fatalf("DeleteBlob: %v %v", ok, err)
	}
	if err := db.QueryRow(ctx, `SELECT count(*) FROM blob_chunks`).Scan(&chunks); err != nil || chunks != 0 {
		t.Fatalf("%d chunks left after the delete (%v)", chunks, err)
	}
}

// BenchmarkPutBlob: what storing an upload in the cluster's database
// adds to it, a 10 MiB file streamed from disk as the upload handler
// does (and reading it back, as a node missing the file does). It runs
// on a throw-away PostgreSQL with fsync off, or on the database
// CHATD_BENCH_STORE names (a postgres:// URL; its blobs are deleted
// after each put).
func BenchmarkPutBlob(b *testing.B) {
	ctx := context.Background()
	dsn := os.Getenv("CHATD_BENCH_STORE")
	if dsn == "" {
		dsn = testpg.DSN(b)
	}
	s, err := pgstore.OpenShared(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const size = 10 << 20
	data := make([]byte, size)
	rand.Read(data)
	path := filepath.Join(b.TempDir(), "up")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	id := string(bytes.Repeat([]byte("b"), 64))
	b.Run("put", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			if c, err := s.PutBlob(ctx, "bench", id, size, f); err != nil || !c {
				b.Fatal(c, err)
			}
			f.Close()
			b.StopTimer()
			if _, err := s.DeleteBlob(ctx, "bench", id, 0); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	if _, err := s.PutBlob(ctx, "bench", id, size, bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	b.Run("read", func(b *testing.B) {
		b.SetBytes(size)
		out := filepath.Join(b.TempDir(), "out")
		for b.Loop() {
			f, err := os.Create(out)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.ReadBlob(ctx, "bench", id, f); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
	s.DeleteBlob(ctx, "bench", id, 0)
}
