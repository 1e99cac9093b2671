//go:build linux

package testpg_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"chatd/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }

// TestDatabasesAreSeparate: each DSN is its own empty database on the
// shared server, and a private server takes connections too.
func TestDatabasesAreSeparate(t *testing.T) {
	ctx := context.Background()
	a, b := testpg.DSN(t), testpg.DSN(t)
	if a == b {
		t.Fatalf("two DSNs are the same: %s", a)
	}
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("table of database a seen in b: %d, %v", n, err)
	}
	var v string
	if err := ca.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL %s", v)

	own := testpg.Start(t)
	c, err := pgx.Connect(ctx, own.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
}
