package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatd/chat"
	"chatd/chat/memstore"
	"chatd/internal/metrics"
)

// genReader yields n bytes of a pattern seeded by seed, made on the fly
// so that the client side holds no body in memory either.
type genReader struct {
	left int64
	x    uint64
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), g.left)
	for i := int64(0); i < n; i++ {
		g.x = g.x*6364136223846793005 + 1442695040888963407
		p[i] = byte(g.x >> 56)
	}
	g.left -= n
	return int(n), nil
}

// TestUploadMemory measures the server's memory while concurrent large
// uploads stream in over loopback: each body goes to disk as it arrives,
// so the peak RSS grows by far less than the bytes in flight. By default
// 4 uploads of 16 MiB; CHATD_MEASURE_UPLOADS=20 runs the figure
// docs/operations.md records (20 of 50 MiB, 1 GiB of temporary disk).
func TestUploadMemory(t *testing.T) {
	n, size := 4, int64(16<<20)
	if v := os.Getenv("CHATD_MEASURE_UPLOADS"); v != "" {
		n, _ = strconv.Atoi(v)
		size = 50 << 20
	}
	core, err := chat.New(chat.Config{}, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	coreDone := make(chan error, 1)
	go func() { coreDone <- core.Run(ctx) }()
	srv, err := New(Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, UploadDir: filepath.Join(t.TempDir(), "uploads"),
		MaxFile: size}, core, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(ctx) }()
	defer func() {
		cancel()
		<-srvDone
		<-coreDone
	}()
	<-srv.Ready()
	if _, err := core.CreateApp(ctx, "shop", "Shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := core.PushUser(ctx, "shop", chat.UserInput{UID: "alice"}); err != nil {
		t.Fatal(err)
	}
	g, err := core.IssueToken(ctx, "shop", "alice", 0)
	if err != nil {
		t.Fatal(err)
	}

	runtime.GC()
	base, heapBase := metrics.RSS(), heapObjects()
	var peak, heapPeak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for {
			if r := metrics.RSS(); r > peak.Load() {
				peak.Store(r)
			}
			if h := heapObjects(); h > heapPeak.Load() {
				heapPeak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	hc := &http.Client{Timeout: 5 * time.Minute}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := http.NewRequest("POST", "http://"+srv.Addr()+"/v1/files?type=file&name=big.bin", &genReader{left: size, x: uint64(i + 1)})
			req.ContentLength = size
			req.Header.Set(HeaderApp, "shop")
			req.Header.Set("Authorization", "Bearer "+g.Token)
			resp, err := hc.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var r struct {
				OK   bool `json:"ok"`
				Data struct {
					Size int64 `json:"size"`
				} `json:"data"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || !r.OK || r.Data.Size != size {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(stop)
	<-sampled
	close(errs)
	for err := range errs {
		t.Fatalf("upload failed: %v", err)
	}
	grow := int64(peak.Load()) - int64(base)
	heapGrow := int64(heapPeak.Load()) - int64(heapBase)
	total := int64(n) * size
	t.Logf("%d concurrent uploads of %d MiB (%d MiB in all) in %v: RSS %d MiB before, peak %d MiB (+%d MiB); Go heap +%d MiB at peak",
		n, size>>20, total>>20, time.Since(start).Round(time.Millisecond), base>>20, peak.Load()>>20, grow>>20, heapGrow>>20)
	// The check is on the Go heap, where a held body would live: the
	// process's RSS also moves with the rest of the test binary (other
	// tests' garbage, the race detector's shadow memory) and flaked.
	if heapGrow > total/2 {
		t.Errorf("the Go heap grew by %d MiB at peak for %d MiB of uploads: bodies are held in memory", heapGrow>>20, total>>20)
	}
}

// heapObjects is the bytes of live and not yet swept heap objects, read
// without stopping the world.
func heapObjects() uint64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}
