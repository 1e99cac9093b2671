package pgstore_test

import (
	"context"
	"testing"

	"chatd/chat"
	"chatd/chat/storetest"
	"chatd/internal/testpg"
	"chatd/pgstore"
)

// openShared opens n handles on dsn, as n nodes would: each its own pool.
func openShared(t *testing.T, dsn string, n int) []*pgstore.Store {
	t.Helper()
	out := make([]*pgstore.Store, n)
	for i := range out {
		s, err := pgstore.OpenShared(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = s
	}
	return out
}

// TestSharedConformance: chat.SharedStore's suite with two nodes on one
// database, each with its own pool.
func TestSharedConformance(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (a, b chat.SharedStore) {
		s := openShared(t, testpg.DSN(t), 2)
		return s[0], s[1]
	})
}
