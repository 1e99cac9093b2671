package pgstore_test

import (
	"context"
	"sync"
	"testing"

	"chatd/chat"
	"chatd/chat/storetest"
	"chatd/internal/testpg"
	"chatd/pgstore"
)

func TestMain(m *testing.M) { testpg.Main(m) }

func open(t *testing.T, dsn string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) chat.Store { return open(t, testpg.DSN(t)) })
}

// TestPersistence: a "dir" of the suite is a database; reopening it is a
// new pool on the same database.
func TestPersistence(t *testing.T) {
	var mu sync.Mutex
	dbs := map[string]string{}
	storetest.RunPersistence(t, func(t *testing.T, dir string) chat.Store {
		mu.Lock()
		dsn, ok := dbs[dir]
		if !ok {
			dsn = testpg.DSN(t)
			dbs[dir] = dsn
		}
		mu.Unlock()
		return open(t, dsn)
	})
}
