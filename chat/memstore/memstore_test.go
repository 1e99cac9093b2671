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

func TestSharedConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) chat.Store { return memstore.NewShared() })
	storetest.RunShared(t, func(t *testing.T) (a, b chat.SharedStore) {
		s := memstore.NewShared()
		return s, s
	})
}
