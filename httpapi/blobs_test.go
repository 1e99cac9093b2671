package httpapi

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/chat/memstore"
	"chatd/httpapi/apiclient"
)

// blobStore is the cluster's store of the tests, counting its blob reads.
type blobStore struct {
	*memstore.Shared
	reads atomic.Int32
}

func (s *blobStore) ReadBlob(ctx context.Context, app, id string, w io.Writer) (int64, error) {
	s.reads.Add(1)
	return s.Shared.ReadBlob(ctx, app, id, w)
}

// fileCluster is nodes of a cluster on one shared store, each with its
// own uploads folder and its server on its own in-memory listener, on
// one clock, each with its own admin key. (No broker: serving files
// needs none.)
type fileCluster struct {
	t     *testing.T
	st    *blobStore
	clock *atomic.Int64
	nodes []*fileHarness
}

func newFileCluster(t *testing.T, n int, mutate func(*Config)) *fileCluster {
	t.Helper()
	fc := &fileCluster{t: t, st: &blobStore{Shared: memstore.NewShared()}, clock: new(atomic.Int64)}
	fc.clock.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	for i := range n {
		h := startFileNode(t, fc.st, true, fc.clock, func(c *Config) {
			if mutate != nil {
				mutate(c)
			}
			if i > 0 { // each node its own admin key, as chatd makes them
				c.AdminKey = strings.Repeat("k", 40) + strconv.Itoa(i)
			}
		})
		if i == 0 {
			h.app = h.harness.app("shop")
		} else {
			h.app = &apiclient.Client{BaseURL: baseURL, App: "shop", Secret: fc.nodes[0].app.Secret, HTTP: h.local}
		}
		fc.nodes = append(fc.nodes, h)
	}
	return fc
}

func (fc *fileCluster) blobIDs() []string {
	fc.t.Helper()
	ids, err := fc.st.BlobIDs(context.Background(), "shop", 0)
	if err != nil {
		fc.t.Fatal(err)
	}
	return ids
}

// An upload through node a is in the cluster's store when it is
// answered, and node b, whose folder is empty, serves it (same bytes and
// headers; the URL a signed works on b) after fetching it once, however
// many ask at once. The same bytes uploaded through b are a duplicate,
// stored once.
func TestClusterUploadServedByAnyNode(t *testing.T) {
	fc := newFileCluster(t, 3, nil)
	a, b, c := fc.nodes[0], fc.nodes[1], fc.nodes[2]
	ta := a.user(a.app, "alice")
	img := pngBytes(t, 40, 30)
	up, ans := a.upload(ta, "type=image&name=cat.png", img, false)
	if !ans.OK {
		t.Fatalf("upload: %s %s", ans.Code, ans.Msg)
	}
	if ids := fc.blobIDs(); len(ids) != 1 || ids[0] != up.ID {
		t.Fatalf("blobs after the upload: %v, want [%s]", ids, up.ID)
	}
	if n := b.stored(); n != 0 {
		t.Fatalf("node b has %d files before any request", n)
	}
	resp, body := b.get(up.URL, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, img) || resp.Header.Get("Content-Type") != "image/png" || resp.Header.Get("ETag") != `"`+up.ID+`"` {
		t.Fatalf("node b: %d %s %s, %d bytes (want %d)", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("ETag"), len(body), len(img))
	}
	if n := b.stored(); n != 1 {
		t.Fatalf("node b cached %d files, want 1", n)
	}
	// A range from the cache.
	if resp, body := b.get(up.URL, map[string]string{"Range": "bytes=0-7"}); resp.StatusCode != 206 || !bytes.Equal(body, img[:8]) {
		t.Fatalf("range on node b: %d %q", resp.StatusCode, body)
	}
	if n := fc.st.reads.Load(); n != 1 {
		t.Fatalf("%d blob reads, want 1", n)
	}

	// Node c: many requests at once, one fetch.
	big := bytes.Repeat([]byte("0123456789abcdef"), 200_000) // 3.2 MB
	upBig, ans := a.upload(ta, "type=file&name=big.bin", big, true)
	if !ans.OK {
		t.Fatalf("upload big: %s %s", ans.Code, ans.Msg)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := c.get(upBig.URL, nil)
			if resp.StatusCode != 200 || !bytes.Equal(body, big) || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
				t.Errorf("node c: %d, %d bytes", resp.StatusCode, len(body))
			}
		}()
	}
	wg.Wait()
	if n := fc.st.reads.Load(); n != 2 {
		t.Fatalf("%d blob reads after 8 requests for one file on node c, want 2 in all", n)
	}
	if left := c.leftovers(); len(left) != 0 {
		t.Fatalf("node c left temporary files: %v", left)
	}

	// The same bytes through b: a duplicate, one blob.
	tb := b.user(b.app, "bob")
	again, ans := b.upload(tb, "type=image", img, false)
	if !ans.OK || !again.Duplicate || again.ID != up.ID {
		t.Fatalf("duplicate through b: %+v %s", again, ans.Msg)
	}
	if ids := fc.blobIDs(); len(ids) != 2 {
		t.Fatalf("blobs: %v, want 2", ids)
	}
	fams := scrape(t, c.local)
	if n := value(t, fams, "chatd_http_file_fetches_total", "result", "fetched"); n != 1 {
		t.Fatalf("node c's fetches %v, want 1", n)
	}
}

// A blob whose bytes do not hash to the file's id is refused, not
// served, and leaves nothing in the node's folder; once the store holds
// the right bytes it is served. A recorded file the store has lost is
// 404 on a node that lacks it.
func TestClusterDamagedBlobRefused(t *testing.T) {
	fc := newFileCluster(t, 2, nil)
	a, b := fc.nodes[0], fc.nodes[1]
	ta := a.user(a.app, "alice")
	data := []byte("the true bytes of the file")
	up, ans := a.upload(ta, "type=file&name=a.txt", data, false)
	if !ans.OK {
		t.Fatalf("upload: %s", ans.Msg)
	}
	if !fc.st.CorruptBlob("shop", up.ID, []byte("the fake bytes of the file")) {
		t.Fatal("no blob to corrupt")
	}
	resp, body := b.get(up.URL, nil)
	if resp.StatusCode != 500 || !strings.Contains(string(body), `"internal"`) || !strings.Contains(string(body), "damaged") {
		t.Fatalf("damaged blob: %d %s", resp.StatusCode, body)
	}
	if n, left := b.stored(), b.leftovers(); n != 0 || len(left) != 0 {
		t.Fatalf("damaged blob left %d files and temporaries %v on node b", n, left)
	}
	if !strings.Contains(b.logBuf.String(), "damaged copy") {
		t.Fatalf("no log of the damaged copy: %s", b.logBuf.String())
	}
	fams := scrape(t, b.local)
	if n := value(t, fams, "chatd_http_file_fetches_total", "result", "failed"); n != 1 {
		t.Fatalf("failed fetches %v, want 1", n)
	}
	// Node a still has its own copy.
	if resp, body := a.get(up.URL, nil); resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("node a: %d %q", resp.StatusCode, body)
	}
	fc.st.CorruptBlob("shop", up.ID, data)
	if resp, body := b.get(up.URL, nil); resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("repaired blob: %d %q", resp.StatusCode, body)
	}

	lost, _ := a.upload(ta, "type=file", []byte("lost"), false)
	if ok, err := fc.st.DeleteBlob(context.Background(), "shop", lost.ID, 0); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if resp, body := b.get(lost.URL, nil); resp.StatusCode != 404 || !strings.Contains(string(body), "is gone") {
		t.Fatalf("lost blob: %d %s", resp.StatusCode, body)
	}
}

// Garbage collection on a cluster: the node that collects a file deletes
// its blob and its own copy; another node's pass removes its cached copy
// of it; a recorded file whose blob is missing is stored again from a
// node that has it.
func TestClusterFileGC(t *testing.T) {
	fc := newFileCluster(t, 2, func(c *Config) { c.UploadGrace = time.Hour })
	a, b := fc.nodes[0], fc.nodes[1]
	for _, n := range fc.nodes {
		n.srv.blobs.minAge = 0 // no upload is in flight: sweep whatever the age (the GC goroutine runs hourly)
	}
	ta := a.user(a.app, "alice")
	keep, _ := a.upload(ta, "type=file", []byte("kept: uploaded later"), false)
	gone, _ := a.upload(ta, "type=file", []byte("collected: never sent"), false)
	if resp, _ := b.get(gone.URL, nil); resp.StatusCode != 200 || b.stored() != 1 {
		t.Fatalf("node b: %d, %d files", resp.StatusCode, b.stored())
	}
	ctx := context.Background()
	// keep is recorded, but its blob is lost: a's pass stores it again.
	if ok, _ := fc.st.DeleteBlob(ctx, "shop", keep.ID, 0); !ok {
		t.Fatal("no blob to delete")
	}
	if n, err := a.srv.CollectFiles(ctx); err != nil || n != 0 {
		t.Fatalf("GC within the grace period: %d %v", n, err)
	}
	if ids := fc.blobIDs(); len(ids) != 2 {
		t.Fatalf("blobs after a's pass: %v, want both (keep's stored again)", ids)
	}
	var got bytes.Buffer
	if _, err := fc.st.ReadBlob(ctx, "shop", keep.ID, &got); err != nil || got.String() != "kept: uploaded later" {
		t.Fatalf("healed blob: %q %v", got.String(), err)
	}

	// keep is sent, gone never: past the grace period only gone goes.
	a.user(a.app, "bob")
	if ok, _, code, msg := a.action(ta, `{"id":"1","action":"send","to":"bob","type":"file","content":{"file_id":"`+keep.ID+`","name":"k.txt"}}`); !ok {
		t.Fatalf("send: %s %s", code, msg)
	}
	fc.clock.Add(int64(time.Hour + time.Minute))
	if n, err := a.srv.CollectFiles(ctx); err != nil || n != 1 {
		t.Fatalf("GC on a removed %d (%v), want 1", n, err)
	}
	if ids := fc.blobIDs(); len(ids) != 1 || ids[0] != keep.ID {
		t.Fatalf("blobs after the GC: %v, want only %s", ids, keep.ID)
	}
	if n := a.stored(); n != 1 {
		t.Fatalf("node a keeps %d files, want 1", n)
	}
	// b still has its copy of gone, never served: its record is gone.
	fresh, _, _ := b.srv.signFileURL("shop", "alice", gone.ID)
	if resp, _ := b.get(fresh, nil); resp.StatusCode != 404 {
		t.Fatalf("a collected file on node b: %d", resp.StatusCode)
	}
	if n, err := b.srv.CollectFiles(ctx); err != nil || n != 0 {
		t.Fatalf("GC on b: %d %v", n, err)
	}
	if n := b.stored(); n != 0 {
		t.Fatalf("node b keeps %d copies of collected files", n)
	}
}

// A single node keeps uploads in its folder only, even on a store that
// could keep blobs: nothing is written to the store, and the fetch
// metric does not exist.
func TestSingleNodeUploadsStayLocal(t *testing.T) {
	st := &blobStore{Shared: memstore.NewShared()}
	clock := new(atomic.Int64)
	clock.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	h := startFileNode(t, st, false, clock, nil)
	h.app = h.harness.app("shop")
	up, ans := h.upload(h.user(h.app, "alice"), "type=file", []byte("local only"), false)
	if !ans.OK || h.stored() != 1 {
		t.Fatalf("upload: %v %s, %d files", ans.OK, ans.Msg, h.stored())
	}
	if ids, _ := st.BlobIDs(context.Background(), "shop", 0); len(ids) != 0 {
		t.Fatalf("a single node stored blobs %v", ids)
	}
	if resp, _ := h.get(up.URL, nil); resp.StatusCode != 200 || st.reads.Load() != 0 {
		t.Fatalf("serve: %d, %d blob reads", resp.StatusCode, st.reads.Load())
	}
	if _, ok := scrape(t, h.local).Value("chatd_http_file_fetches_total", "result", "fetched"); ok {
		t.Fatal("a single node exports chatd_http_file_fetches_total")
	}
}

// A file recorded while a GC pass runs (after the pass read the app's
// files; a long pass) keeps its blob and its copies: the sweep looks at
// the records again before deleting.
func TestClusterGCKeepsFileRecordedDuringPass(t *testing.T) {
	fc := newFileCluster(t, 2, func(c *Config) { c.UploadGrace = time.Hour })
	a, b := fc.nodes[0], fc.nodes[1]
	for _, n := range fc.nodes {
		n.srv.blobs.minAge = 0 // as if the pass had outlived minAge
	}
	ctx := context.Background()
	gc, err := a.srv.core.CollectFiles(ctx, "shop", a.srv.cfg.UploadGrace.Milliseconds()) // the pass's list: empty
	if err != nil || len(gc.Kept) != 0 {
		t.Fatalf("first list: %+v %v", gc, err)
	}
	ta := a.user(a.app, "alice")
	late, _ := a.upload(ta, "type=file", []byte("uploaded during the pass"), false)
	a.srv.sweepBlobs(ctx, fc.st, "shop", gc.Kept)
	if ids := fc.blobIDs(); len(ids) != 1 || ids[0] != late.ID {
		t.Fatalf("blobs after the sweep: %v, want the late upload's", ids)
	}
	if n := a.stored(); n != 1 {
		t.Fatalf("node a keeps %d files, want the late upload", n)
	}
	if resp, _ := b.get(late.URL, nil); resp.StatusCode != 200 {
		t.Fatalf("the late upload through node b: %d", resp.StatusCode)
	}
}
