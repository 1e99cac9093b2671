package pgstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

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

// TestDatabaseLock: a database is used by one single node or by the
// nodes of one cluster, never both. While a single node (Open) has it, a
// second single node and a cluster node (OpenShared) are refused, each
// naming the holder and what to do; once it closes, any number of
// cluster nodes share it, and a single node is refused naming them; once
// they close, the database is free again.
func TestDatabaseLock(t *testing.T) {
	ctx := context.Background()
	dsn := testpg.DSN(t)
	defer pgstore.SetLockWait(200 * time.Millisecond)() // each refusal waits for it
	refused := func(what string, err error, want ...string) {
		t.Helper()
		if !errors.Is(err, pgstore.ErrInUse) {
			t.Fatalf("%s: %v; want ErrInUse", what, err)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%s: %q; want it to say %q", what, err, w)
			}
		}
	}
	single := open(t, dsn)
	_, err := pgstore.Open(ctx, dsn)
	refused("a second single node", err, "by another single chatd node (chatd from 127.0.0.1", "one single node per database")
	_, err = pgstore.OpenShared(ctx, dsn)
	refused("a cluster node beside a single node", err, "by a single chatd node (chatd from 127.0.0.1", "restart it with cluster_node")
	if err := single.Close(); err != nil {
		t.Fatal(err)
	}

	n1, err := pgstore.OpenShared(ctx, dsn)
	if err != nil {
		t.Fatalf("a cluster node on the freed database: %v", err)
	}
	n2, err := pgstore.OpenShared(ctx, dsn)
	if err != nil {
		t.Fatalf("a second cluster node: %v", err)
	}
	_, err = pgstore.Open(ctx, dsn)
	refused("a single node beside a cluster", err, "by a cluster (2 chatd nodes with cluster_node: chatd from 127.0.0.1", "start this chatd with cluster_node")
	n1.Close()
	_, err = pgstore.Open(ctx, dsn)
	refused("a single node beside one cluster node", err, "(1 chatd node with")
	n2.Close()
	again := open(t, dsn)
	again.Close()
}
