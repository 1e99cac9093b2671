package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"chatd/chat"
)

// Uploads on a cluster (docs/cluster.md, "Uploads on a cluster"). When
// the core is a node of a cluster whose store keeps blobs
// (chat.Core.Blobs), an upload is written to the store too, before it is
// recorded and answered (upload.go), so the answer means that every node
// can serve it and that it survives the loss of this one. This node's
// uploads folder is then a cache: a file it lacks is fetched from the
// store into it (fetchBlob), checked against its id, and served as
// usual. The garbage collection (CollectFiles) deletes the blobs whose
// file record is gone, and removes this node's copies of them.
//
// On a single node Blobs is nil and nothing here runs.

// blobState is the Server's part of the blobs.
type blobState struct {
	// minAge protects a blob or a cached file from the garbage
	// collection's sweep while an upload may still be recording it:
	// UploadTimeout and a minute.
	minAge time.Duration

	mu       sync.Mutex
	fetching map[string]*blobFetch // app/id → the fetch in progress

	fetched, failed atomic.Uint64 // metrics

	urlKeys sync.Map // app → the key of its file URLs on a cluster (files.go)
}

// blobFetch is one fetch of a file that requests for it wait for.
type blobFetch struct {
	done chan struct{}
	err  error
}

// errBlobStore answers an upload or a fetch the cluster's store failed.
var errBlobStore = chat.Errf(chat.CodeUnavailable, "the cluster's database did not take or give the file; retry")

// putBlob stores an upload's bytes (f, the fsynced temporary file, of n
// bytes) in the cluster's store.
func (s *Server) putBlob(bs chat.BlobStore, f *os.File, app, id string, n int64) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := bs.PutBlob(s.reqCtx, app, id, n, f); err != nil {
		s.log.Error().Err(err).Str("app", app).Str("file", id).Msg("http api: store upload in the cluster's database")
		return errBlobStore
	}
	return nil
}

// fetchBlob copies file id of app (size bytes) from the cluster's store
// into this node's uploads folder. Concurrent calls for one file make one
// copy: the later ones wait for the first one's result.
func (s *Server) fetchBlob(bs chat.BlobStore, app, id string, size int64) error {
	b := &s.blobs
	key := app + "/" + id
	b.mu.Lock()
	if f := b.fetching[key]; f != nil {
		b.mu.Unlock()
		<-f.done
		return f.err
	}
	f := &blobFetch{done: make(chan struct{})}
	if b.fetching == nil {
		b.fetching = map[string]*blobFetch{}
	}
	b.fetching[key] = f
	b.mu.Unlock()

	f.err = s.fetchBlobOnce(bs, app, id, size)
	if f.err != nil {
		b.failed.Add(1)
	} else {
		b.fetched.Add(1)
	}
	b.mu.Lock()
	delete(b.fetching, key)
	b.mu.Unlock()
	close(f.done)
	return f.err
}

// fetchBlobOnce writes the blob to a temporary file, hashing it on the
// way, and renames it to the file's place only if the bytes hash to the
// id: content addressing makes any copy that does trustworthy, and a
// damaged one is never served.
func (s *Server) fetchBlobOnce(bs chat.BlobStore, app, id string, size int64) error {
	t, err := s.newTemp("fetch-*")
	if err != nil {
		return err
	}
	defer t.discard()
	f := t.f
	h := sha256.New()
	n, err := bs.ReadBlob(s.reqCtx, app, id, io.MultiWriter(f, h))
	if errors.Is(err, chat.ErrNotFound) {
		s.log.Error().Str("app", app).Str("file", id).Msg("http api: a recorded upload is neither in this node's folder nor in the cluster's database")
		return errFileGone(id)
	}
	if err != nil {
		s.log.Error().Err(err).Str("app", app).Str("file", id).Msg("http api: fetch upload from the cluster's database")
		return errBlobStore
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != id || n != size {
		s.log.Error().Str("app", app).Str("file", id).Str("sha256", got).Int64("bytes", n).Int64("size", size).
			Msg("http api: the cluster's database holds a damaged copy of an upload (its bytes do not hash to its id): not served")
		return chat.Errf(chat.CodeInternal, "the stored copy of file "+id+" is damaged: not served")
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	t.f = nil
	dst := s.filePath(app, id)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	if err := os.Rename(t.path, dst); err != nil {
		return err
	}
	t.path = ""
	return nil
}

func errFileGone(id string) *chat.Error { return chat.Errf(chat.CodeNotFound, "file "+id+" is gone") }

// sweepBlobs runs after the core's collection of app on a cluster, kept
// being the files still recorded. It
//
//   - deletes the blobs of files no longer recorded (collected by this
//     pass or another node's, or an upload refused after its blob was
//     stored), older than minAge so that an upload recording one now
//     keeps it (a PutBlob of a stored blob moves its age back to 0);
//   - removes this node's cached copies of files no longer recorded
//     (another node's pass collected them), older than minAge;
//   - stores the blob of a recorded file this node has and the store
//     lacks (uploaded before the cluster, or on a node that lost its
//     blob): a node's folder can heal the store.
//
// It returns the cached copies it removed; a failure is logged and the
// sweep goes on.
func (s *Server) sweepBlobs(ctx context.Context, bs chat.BlobStore, app string, kept []string) int {
	live := make(map[string]bool, len(kept))
	for _, id := range kept {
		live[id] = true
	}
	minAge := s.blobs.minAge
	log := func(err error, msg string) { s.log.Warn().Err(err).Str("app", app).Msg("http api: " + msg) }
	// kept was read at the start of the GC pass, which may have taken
	// longer than minAge: a file recorded since (an upload on any node)
	// is not in it. Look again before deleting anything; when the look
	// fails, keep the file.
	recorded := func(id string) bool {
		if live[id] {
			return true
		}
		_, err := s.core.File(ctx, app, id)
		var ce *chat.Error
		if errors.As(err, &ce) && ce.Code == chat.CodeNotFound {
			return false
		}
		live[id] = true
		return true
	}
	if old, err := bs.BlobIDs(ctx, app, minAge); err != nil {
		log(err, "list the cluster's uploads to collect")
	} else {
		for _, id := range old {
			if !recorded(id) {
				if _, err := bs.DeleteBlob(ctx, app, id, minAge); err != nil {
					log(err, "delete an unrecorded upload from the cluster's database")
				}
			}
		}
	}
	stored := map[string]bool{}
	if all, err := bs.BlobIDs(ctx, app, 0); err != nil {
		log(err, "list the cluster's uploads")
		stored = nil
	} else {
		for _, id := range all {
			stored[id] = true
		}
	}
	removed := 0
	dirs, _ := os.ReadDir(filepath.Join(s.cfg.UploadDir, app))
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		ents, _ := os.ReadDir(filepath.Join(s.cfg.UploadDir, app, d.Name()))
		for _, e := range ents {
			id := e.Name()
			if !e.Type().IsRegular() || !chat.ValidFileID(id) || id[:2] != d.Name() {
				continue
			}
			path := s.filePath(app, id)
			switch {
			case !recorded(id):
				if info, err := e.Info(); err == nil && time.Since(info.ModTime()) >= minAge {
					if err := os.Remove(path); err == nil {
						removed++
					}
				}
			case stored != nil && !stored[id]:
				if err := s.healBlob(ctx, bs, app, id, path); err != nil {
					log(err, "store a recorded upload the cluster's database lacks")
				}
			}
		}
	}
	return removed
}

// healBlob stores this node's copy of a recorded file the store lacks,
// if its bytes hash to its id.
func (s *Server) healBlob(ctx context.Context, bs chat.BlobStore, app, id, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if hex.EncodeToString(h.Sum(nil)) != id {
		return errors.New("this node's copy of " + id + " does not hash to its id")
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err = bs.PutBlob(ctx, app, id, n, f)
	return err
}
