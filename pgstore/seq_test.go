package pgstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"chatd/chat"
	"chatd/internal/testpg"
)

// allocator is one of the two ways to take seqs.
type allocator struct {
	name  string
	alloc func(s *Store, ctx context.Context, id chat.SessionID, n int) (uint64, error)
}

var allocators = []allocator{
	{name: "upsert", alloc: (*Store).AllocSeqs},
	{name: "for_update", alloc: (*Store).allocSeqsLocked},
}

// TestAllocSeqsConcurrent: many goroutines, each on its own store (its
// own pool of connections, as separate nodes would be), take runs of
// seqs of two sessions at once; every seq from the start to the total is
// handed out exactly once. A session with messages continues after its
// summary's seq.
func TestAllocSeqsConcurrent(t *testing.T) {
	for _, a := range allocators {
		t.Run(a.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := testpg.DSN(t)
			const (
				nodes   = 8
				workers = 4 // per node
				calls   = 40
			)
			stores := make([]*Store, nodes)
			for i := range stores {
				s, err := OpenShared(ctx, dsn)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				stores[i] = s
			}
			// Session 2 has a summary at 41: its seqs continue at 42.
			err := stores[0].Apply(ctx, &chat.Batch{Sessions: []chat.Session{{ID: 2, App: "a", Kind: chat.KindGroup, LastSeq: 41}}})
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			got := map[chat.SessionID][]uint64{}
			var wg sync.WaitGroup
			for w := range nodes * workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := stores[w%nodes]
					for c := range calls {
						id := chat.SessionID(1 + (w+c)%2)
						n := 1 + (w*7+c)%5
						first, err := a.alloc(s, ctx, id, n)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						for k := range n {
							got[id] = append(got[id], first+uint64(k))
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			for id, start := range map[chat.SessionID]uint64{1: 1, 2: 42} {
				seqs := got[id]
				slices.Sort(seqs)
				for i, seq := range seqs {
					if seq != start+uint64(i) {
						t.Fatalf("session %d: seq #%d is %d, want %d (a gap or a seq handed out twice)", id, i, seq, start+uint64(i))
					}
				}
				t.Logf("session %d: %d seqs from %d, unique and gapless", id, len(seqs), start)
			}
		})
	}
}

func TestAllocSeqsRefusesZero(t *testing.T) {
	s, err := Open(context.Background(), testpg.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.AllocSeqs(context.Background(), 1, 0); err == nil {
		t.Fatal("AllocSeqs(n=0) succeeded")
	}
}

// BenchmarkAllocSeqs compares the one-statement upsert with SELECT … FOR
// UPDATE, with several goroutines on one hot session (the contended case:
// a busy group on several nodes) and on a session each. Numbers in
// docs/cluster.md.
func BenchmarkAllocSeqs(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, testpg.DSN(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, a := range allocators {
		for _, sessions := range []string{"one", "own"} {
			for _, par := range []int{1, 8} {
				b.Run(fmt.Sprintf("%s/session=%s/goroutines=%d", a.name, sessions, par), func(b *testing.B) {
					b.ReportAllocs()
					var next sync.Mutex
					g := 0
					b.SetParallelism(par) // par × GOMAXPROCS goroutines
					b.RunParallel(func(pb *testing.PB) {
						next.Lock()
						g++
						id := chat.SessionID(1000)
						if sessions == "own" {
							id = chat.SessionID(2000 + g)
						}
						next.Unlock()
						for pb.Next() {
							if _, err := a.alloc(s, ctx, id, 1); err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			}
		}
	}
}
