package memstore_test

import (
	"testing"

	"chatd/chat"
	"chatd/chat/memstore"
	"chatd/chat/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) chat.Store { return memstore.New() })
}
