package pgstore_test

import (
	"context"
	"errors"
	"strings"
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

// TestSingleNodeLock: while one chatd has the database open, a second
// Open is refused, naming the holder; OpenShared (tools, cluster nodes)
// is not; once the first closes, the database is free again.
func TestSingleNodeLock(t *testing.T) {
	ctx := context.Background()
	dsn := testpg.DSN(t)
	first := open(t, dsn)
	_, err := pgstore.Open(ctx, dsn)
	if !errors.Is(err, pgstore.ErrInUse) || !strings.Contains(err.Error(), "chatd from 127.0.0.1") {
		t.Fatalf("second Open: %v; want ErrInUse naming the holder", err)
	}
	shared, err := pgstore.OpenShared(ctx, dsn)
	if err != nil {
		t.Fatalf("OpenShared beside a node: %v", err)
	}
	shared.Close()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again := open(t, dsn)
	again.Close()
}
