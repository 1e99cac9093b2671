package memstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"chatd/chat"
)

var _ chat.BlobStore = (*Shared)(nil)

// blob is one stored upload.
type blob struct {
	data   []byte
	stored time.Time // stored or last put
}

// PutBlob implements chat.BlobStore.
func (s *Shared) PutBlob(_ context.Context, app, id string, size int64, r io.Reader) (bool, error) {
	k := app + "\x00" + id
	s.blobMu.Lock()
	if b := s.blobs[k]; b != nil {
		b.stored = time.Now()
		s.blobMu.Unlock()
		return false, nil
	}
	s.blobMu.Unlock()
	data, err := io.ReadAll(r)
	if err != nil {
		return false, err
	}
	if int64(len(data)) != size {
		return false, fmt.Errorf("memstore: blob %s of %s: read %d bytes, want %d", id, app, len(data), size)
	}
	s.blobMu.Lock()
	defer s.blobMu.Unlock()
	if s.blobs == nil {
		s.blobs = map[string]*blob{}
	}
	if b := s.blobs[k]; b != nil { // put by another caller meanwhile
		b.stored = time.Now()
		return false, nil
	}
	s.blobs[k] = &blob{data: data, stored: time.Now()}
	return true, nil
}

// ReadBlob implements chat.BlobStore.
func (s *Shared) ReadBlob(_ context.Context, app, id string, w io.Writer) (int64, error) {
	s.blobMu.Lock()
	b := s.blobs[app+"\x00"+id]
	var data []byte
	if b != nil {
		data = b.data // never changed in place once stored
	}
	s.blobMu.Unlock()
	if b == nil {
		return 0, chat.ErrNotFound
	}
	return io.Copy(w, bytes.NewReader(data))
}

// DeleteBlob implements chat.BlobStore.
func (s *Shared) DeleteBlob(_ context.Context, app, id string, olderThan time.Duration) (bool, error) {
	k := app + "\x00" + id
	s.blobMu.Lock()
	defer s.blobMu.Unlock()
	b := s.blobs[k]
	if b == nil || time.Since(b.stored) < olderThan {
		return false, nil
	}
	delete(s.blobs, k)
	return true, nil
}

// BlobIDs implements chat.BlobStore.
func (s *Shared) BlobIDs(_ context.Context, app string, olderThan time.Duration) ([]string, error) {
	s.blobMu.Lock()
	defer s.blobMu.Unlock()
	var ids []string
	for k, b := range s.blobs {
		if a, id, _ := strings.Cut(k, "\x00"); a == app && time.Since(b.stored) >= olderThan {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// CorruptBlob replaces the bytes of a stored blob, for tests of a reader
// that must refuse a blob that does not hash to its id.
func (s *Shared) CorruptBlob(app, id string, data []byte) bool {
	s.blobMu.Lock()
	defer s.blobMu.Unlock()
	b := s.blobs[app+"\x00"+id]
	if b == nil {
		return false
	}
	b.data = append([]byte(nil), data...)
	return true
}
