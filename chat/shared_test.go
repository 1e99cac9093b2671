package chat_test

import (
	"testing"

	"chatd/chat/memstore"
	"chatd/chat/storetest"
)

// Two nodes on one shared store (storetest.RunTwoNodes; pgstore runs it
// on PostgreSQL with a pool per node).
func TestSharedStoreTwoNodes(t *testing.T) {
	st := memstore.NewShared()
	storetest.RunTwoNodes(t, st, st)
}
