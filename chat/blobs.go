package chat

import (
	"context"
	"io"
	"time"
)

// Blobs: the bytes of uploads kept in the store of a cluster
// (docs/cluster.md, "Uploads on a cluster").
//
// A single node keeps an upload's bytes in its uploads folder only
// (httpapi/upload.go). The nodes of a cluster each have their own folder,
// so there the bytes are also written to the shared store before the
// upload is recorded and answered, and a node that is asked for a file
// its folder lacks fetches it from the store into the folder (checking
// that the bytes hash to the file's id). Each node's folder is then a
// cache of the store, and a file survives the loss of the node that took
// it. A blob is named like the file: its app and its id, the hex SHA-256
// of its content, so two nodes storing the same id store the same bytes.

// BlobStore is what a SharedStore may add to keep uploads' bytes: the
// cluster's PostgreSQL (pgstore) and memstore.Shared implement it. The
// store does not check that a blob hashes to its id; whoever reads one
// does.
type BlobStore interface {
	// PutBlob stores the size bytes r yields (to its EOF) as blob id of
	// app, all or nothing: once it returns nil the whole blob is durable.
	// When the blob exists already it reads nothing from r, moves the
	// blob's stored time to now (so that a DeleteBlob with an age that
	// was about to remove it leaves it) and reports created false.
	PutBlob(ctx context.Context, app, id string, size int64, r io.Reader) (created bool, err error)
	// ReadBlob writes blob id of app to w, in order, and returns how many
	// bytes it wrote; ErrNotFound when there is no such blob.
	ReadBlob(ctx context.Context, app, id string, w io.Writer) (int64, error)
	// DeleteBlob removes blob id of app if it was stored (or last put)
	// at least olderThan ago on the store's clock (0: whatever its age),
	// and reports whether it did.
	DeleteBlob(ctx context.Context, app, id string, olderThan time.Duration) (bool, error)
	// BlobIDs lists the ids of app's blobs stored (or last put) at least
	// olderThan ago, ascending.
	BlobIDs(ctx context.Context, app string, olderThan time.Duration) ([]string, error)
}

// Blobs returns the store's BlobStore when this core is a node of a
// cluster (Config.SharedStore) whose store keeps blobs; nil otherwise (a
// single node, bbolt or PostgreSQL: uploads stay in the node's folder).
func (c *Core) Blobs() BlobStore {
	if c.shared == nil {
		return nil
	}
	b, _ := c.shared.(BlobStore)
	return b
}
