package chat_test

import (
	"context"
	"sync"
	"testing"

	"chatd/chat"
	"chatd/chat/memstore"
)

// TestEventTagsAcrossNodes: nodes of one shared store hand out webhook
// event ids that never collide (each node's own tag in the low bits),
// each node's strictly increasing; a stopped node's tag is released and
// taken by the next node.
func TestEventTagsAcrossNodes(t *testing.T) {
	shared := memstore.NewShared()
	start := func() (*chat.Core, func()) {
		core, err := chat.New(chat.Config{SharedStore: true}, shared)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { core.Run(ctx); close(done) }()
		return core, func() { cancel(); <-done }
	}
	a, stopA := start()
	b, stopB := start()
	defer stopB()
	const n = 2000
	ids := make([][]int64, 2)
	var wg sync.WaitGroup
	for i, node := range []*chat.Core{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				ids[i] = append(ids[i], node.NextEventIDForTest())
			}
		}()
	}
	wg.Wait()
	seen := map[int64]bool{}
	tags := [2]int64{}
	for i := range ids {
		tags[i] = ids[i][0] & 1023
		for k, id := range ids[i] {
			if seen[id] {
				t.Fatalf("event id %d handed out twice", id)
			}
			seen[id] = true
			if k > 0 && id <= ids[i][k-1] {
				t.Fatalf("node %d: id %d after %d: not increasing", i, id, ids[i][k-1])
			}
			if id&1023 != tags[i] {
				t.Fatalf("node %d: id %d has tag %d, its first had %d", i, id, id&1023, tags[i])
			}
		}
	}
	if tags[0] == tags[1] {
		t.Fatalf("both nodes have tag %d", tags[0])
	}
	stopA()
	c, stopC := start()
	defer stopC()
	if got := c.NextEventIDForTest() & 1023; got != tags[0] {
		t.Fatalf("the node started after a's stop has tag %d; want a's released tag %d", got, tags[0])
	}
}
