package pgstore

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"chatd/internal/testpg"
)

func newPool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func versions(t *testing.T, p *pgxpool.Pool) []int32 {
	t.Helper()
	rows, _ := p.Query(context.Background(), "SELECT version FROM schema_migrations ORDER BY version")
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestConcurrentOpens: nodes starting together on one new database all
// open it; the schema is created once.
func TestConcurrentOpens(t *testing.T) {
	dsn := testpg.DSN(t)
	const nodes = 6
	var wg sync.WaitGroup
	errs := make(chan error, nodes)
	for range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := OpenShared(context.Background(), dsn)
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ms, err := loadMigrations(migrations)
	if err != nil {
		t.Fatal(err)
	}
	if vs := versions(t, newPool(t, dsn)); len(vs) != len(ms) || int(vs[len(vs)-1]) != ms[len(ms)-1].version {
		t.Fatalf("schema_migrations = %v after concurrent opens; want each of %d versions once", vs, len(ms))
	}
}

// TestMigrations: each version is applied once, in its own transaction
// (a failing one leaves nothing of itself and stops the start), and a
// database from a newer chatd is refused.
func TestMigrations(t *testing.T) {
	ctx := context.Background()
	p := newPool(t, testpg.DSN(t))
	load := func(files map[string]string) []migration {
		t.Helper()
		fsys := fstest.MapFS{}
		for name, sql := range files {
			fsys["migrations/"+name] = &fstest.MapFile{Data: []byte(sql)}
		}
		ms, err := loadMigrations(fsys)
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	v1 := map[string]string{"0001_a.sql": "CREATE TABLE a (x int); INSERT INTO a VALUES (1);"}
	if got, err := migrate(ctx, p, load(v1)); err != nil || len(got) != 1 || got[0] != 1 {
		t.Fatalf("first migrate applied %v, %v; want [1]", got, err)
	}
	if got, err := migrate(ctx, p, load(v1)); err != nil || len(got) != 0 {
		t.Fatalf("second migrate applied %v, %v; want nothing", got, err)
	}

	// Version 2 fails half-way: its first table must not stay.
	v2 := map[string]string{"0001_a.sql": v1["0001_a.sql"], "0002_b.sql": "CREATE TABLE b (x int); SELECT no_such_function();"}
	if _, err := migrate(ctx, p, load(v2)); err == nil || !strings.Contains(err.Error(), "0002_b.sql") {
		t.Fatalf("failing migration: err = %v, want one naming 0002_b.sql", err)
	}
	var n int
	if err := p.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'b'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("table of the failed migration: %d, %v; want none", n, err)
	}
	if vs := versions(t, p); len(vs) != 1 {
		t.Fatalf("schema_migrations = %v after a failed migration, want [1]", vs)
	}

	v2["0002_b.sql"] = "CREATE TABLE b (x int);"
	if got, err := migrate(ctx, p, load(v2)); err != nil || len(got) != 1 || got[0] != 2 {
		t.Fatalf("fixed migration applied %v, %v; want [2]", got, err)
	}
	// An older chatd (knowing only version 1) refuses this database.
	if _, err := migrate(ctx, p, load(v1)); err == nil || !strings.Contains(err.Error(), "newer chatd") {
		t.Fatalf("older chatd on a newer schema: err = %v, want a refusal", err)
	}
}

func TestMigrationNames(t *testing.T) {
	for _, name := range []string{"1.sql", "x_a.sql", "0000_zero.sql"} {
		if _, err := loadMigrations(fstest.MapFS{"migrations/" + name: {}}); err == nil {
			t.Errorf("migration %s accepted", name)
		}
	}
	if _, err := loadMigrations(fstest.MapFS{"migrations/0001_a.sql": {}, "migrations/1_b.sql": {}}); err == nil {
		t.Error("two migrations of one version accepted")
	}
}

// TestPairMigration: 0003 makes a pair's private session unique; a
// database that holds one pair twice is refused with the ids and what to
// do, and migrates once that is fixed.
func TestPairMigration(t *testing.T) {
	ctx := context.Background()
	p := newPool(t, testpg.DSN(t))
	ms, err := loadMigrations(migrations)
	if err != nil {
		t.Fatal(err)
	}
	if ms[2].version != 3 {
		t.Fatalf("migration 3 is %s", ms[2].name)
	}
	if _, err := migrate(ctx, p, ms[:2]); err != nil {
		t.Fatal(err)
	}
	_, err = p.Exec(ctx, `INSERT INTO sessions VALUES
		(4, 'shop', 1, '', '', '', 'u1', 'u2', 0, 0, 0, '', '', ''),
		(9, 'shop', 1, '', '', '', 'u2', 'u1', 0, 0, 0, '', '', '')`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = migrate(ctx, p, ms)
	if err == nil || !strings.Contains(err.Error(), "private sessions {4,9} of app shop are one pair's") ||
		!strings.Contains(err.Error(), "keep one") {
		t.Fatalf("migrating a database with a pair twice: %v", err)
	}
	t.Log(err)
	if _, err := p.Exec(ctx, `DELETE FROM sessions WHERE id = 9`); err != nil {
		t.Fatal(err)
	}
	if got, err := migrate(ctx, p, ms); err != nil || !slices.Contains(got, 3) {
		t.Fatalf("migrating once fixed: applied %v, %v", got, err)
	}
}
