package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"chatd/chat"
)

// failReader fails its first Read: a PutBlob of a stored blob must not
// read.
type failReader struct{ t *testing.T }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("PutBlob read the body of a blob it has already")
	return 0, errors.New("failReader")
}

// brokenReader yields n bytes, then fails.
type brokenReader struct{ n int }

func (b *brokenReader) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, errors.New("the upload's file went away")
	}
	k := min(len(p), b.n)
	b.n -= k
	return k, nil
}

// testSharedBlobs: chat.BlobStore, written through one handle and read
// through the other, as two nodes do: a blob reads back exactly (a large
// one stored in several chunks too), a second put of it reads nothing, a
// failed put stores nothing, DeleteBlob and BlobIDs honour the age, and
// a missing blob is ErrNotFound.
func testSharedBlobs(t *testing.T, a, b chat.SharedStore) {
	ba, ok := a.(chat.BlobStore)
	if !ok {
		t.Skipf("%T keeps no blobs", a)
	}
	bb := b.(chat.BlobStore)
	ctx := context.Background()
	id1, id2, id3 := string(bytes.Repeat([]byte("1"), 64)), string(bytes.Repeat([]byte("2"), 64)), string(bytes.Repeat([]byte("3"), 64))
	read := func(s chat.BlobStore, app, id string) ([]byte, error) {
		var buf bytes.Buffer
		n, err := s.ReadBlob(ctx, app, id, &buf)
		if err == nil && n != int64(buf.Len()) {
			t.Errorf("ReadBlob %s: said %d bytes, wrote %d", id, n, buf.Len())
		}
		return buf.Bytes(), err
	}

	if _, err := read(bb, "app1", id1); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("missing blob: %v, want ErrNotFound", err)
	}
	if ok, err := ba.DeleteBlob(ctx, "app1", id1, 0); ok || err != nil {
		t.Fatalf("delete a missing blob: %v %v", ok, err)
	}

	small := []byte("hello, blob")
	if created, err := ba.PutBlob(ctx, "app1", id1, int64(len(small)), bytes.NewReader(small)); !created || err != nil {
		t.Fatalf("PutBlob: %v %v", created, err)
	}
	if got, err := read(bb, "app1", id1); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("ReadBlob on the other node: %q %v", got, err)
	}
	if created, err := bb.PutBlob(ctx, "app1", id1, int64(len(small)), failReader{t}); created || err != nil {
		t.Fatalf("PutBlob of a stored blob: created %v, %v", created, err)
	}

	// Several chunks (PostgreSQL's are 1 MiB), the last one short.
	large := make([]byte, 5<<19+3)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range large {
		large[i] = byte(rng.Uint32())
	}
	if created, err := bb.PutBlob(ctx, "app1", id2, int64(len(large)), bytes.NewReader(large)); !created || err != nil {
		t.Fatalf("PutBlob large: %v %v", created, err)
	}
	if got, err := read(ba, "app1", id2); err != nil || !bytes.Equal(got, large) {
		t.Fatalf("ReadBlob large: %d bytes, %v; want the %d put", len(got), err, len(large))
	}

	// All or nothing: a body that breaks after two chunks, or that is not
	// the size announced, stores nothing.
	if _, err := ba.PutBlob(ctx, "app1", id3, 3<<20, &brokenReader{n: 5 << 19}); err == nil {
		t.Fatal("PutBlob of a body that breaks: no error")
	}
	if _, err := ba.PutBlob(ctx, "app1", id3, 10, bytes.NewReader(small)); err == nil {
		t.Fatal("PutBlob of a body of the wrong size: no error")
	}
	if _, err := read(bb, "app1", id3); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("a failed put left a blob: %v", err)
	}

	// Another app's blob of the same id is another blob.
	if created, err := ba.PutBlob(ctx, "app2", id1, 3, bytes.NewReader([]byte("abc"))); !created || err != nil {
		t.Fatalf("PutBlob app2: %v %v", created, err)
	}
	if got, err := read(bb, "app2", id1); err != nil || string(got) != "abc" {
		t.Fatalf("ReadBlob app2: %q %v", got, err)
	}
	if ids, err := bb.BlobIDs(ctx, "app1", 0); err != nil || !slices.Equal(ids, []string{id1, id2}) {
		t.Fatalf("BlobIDs app1: %v %v", ids, err)
	}
	if ids, err := bb.BlobIDs(ctx, "app1", time.Hour); err != nil || len(ids) != 0 {
		t.Fatalf("BlobIDs app1 older than an hour: %v %v", ids, err)
	}

	// The age guards a delete; 0 deletes whatever the age.
	if ok, err := bb.DeleteBlob(ctx, "app1", id1, time.Hour); ok || err != nil {
		t.Fatalf("DeleteBlob of a young blob with an hour's age: %v %v", ok, err)
	}
	if ok, err := bb.DeleteBlob(ctx, "app1", id1, 0); !ok || err != nil {
		t.Fatalf("DeleteBlob: %v %v", ok, err)
	}
	if _, err := read(ba, "app1", id1); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("a deleted blob reads: %v", err)
	}
	if ok, err := ba.DeleteBlob(ctx, "app1", id1, 0); ok || err != nil {
		t.Fatalf("DeleteBlob twice: %v %v", ok, err)
	}
	if got, err := read(ba, "app2", id1); err != nil || string(got) != "abc" {
		t.Fatalf("deleting app1's blob touched app2's: %q %v", got, err)
	}
	if ids, _ := ba.BlobIDs(ctx, "app1", 0); !slices.Equal(ids, []string{id2}) {
		t.Fatalf("BlobIDs after the delete: %v", ids)
	}
	// A deleted blob may be put again.
	if created, err := ba.PutBlob(ctx, "app1", id1, int64(len(small)), io.MultiReader(bytes.NewReader(small))); !created || err != nil {
		t.Fatalf("PutBlob after a delete: %v %v", created, err)
	}
}
