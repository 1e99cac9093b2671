package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the schema's versions: NNNN_name.sql, applied in order,
// each in one transaction with its row in schema_migrations. A migration
// once released is never edited; a change is a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

// migrateLock is the pg_advisory_lock key that serialises migrations: nodes
// starting together on one database take turns, and the later ones find
// the schema current. ("chatd" in ASCII.)
const migrateLock = 0x6368617464

// migration is one schema version.
type migration struct {
	version int
	name    string // the file name
	sql     string
}

// loadMigrations reads NNNN_*.sql from fsys's migrations folder, ascending.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	files, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, f := range files {
		name := path.Base(f)
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("pgstore: migration %s: name must be NNNN_what.sql", name)
		}
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("pgstore: migrations %s and %s have one version", out[i-1].name, out[i].name)
		}
	}
	return out, nil
}

// migrate brings the database's schema to the newest of ms. It holds the
// advisory lock throughout, applies each missing version in its own
// transaction, and refuses a database that has versions it does not know
// (written by a newer chatd). It reports the versions it applied.
func migrate(ctx context.Context, pool *pgxpool.Pool, ms []migration) (applied []int, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrateLock)); err != nil {
		return nil, fmt.Errorf("pgstore: migration lock: %w", err)
	}
	defer func() {
		// A connection whose unlock failed goes away with its lock.
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrateLock)); uerr != nil {
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("pgstore: schema_migrations: %w", err)
	}
	rows, _ := conn.Query(ctx, "SELECT version FROM schema_migrations")
	done, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("pgstore: schema_migrations: %w", err)
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("pgstore: no migrations")
	}
	known := true
	for _, v := range done {
		if !slices.ContainsFunc(ms, func(m migration) bool { return m.version == int(v) }) {
			known = false
		}
	}
	if !known {
		return nil, fmt.Errorf("pgstore: the database has schema versions %v, this chatd knows up to %d: it was used by a newer chatd; run that one (or a newer one)", done, ms[len(ms)-1].version)
	}
	for _, m := range ms {
		if slices.Contains(done, int32(m.version)) {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Hint != "" {
				return applied, fmt.Errorf("pgstore: migration %s: %w (%s)", m.name, err, pe.Hint)
			}
			return applied, fmt.Errorf("pgstore: migration %s: %w", m.name, err)
		}
		applied = append(applied, m.version)
	}
	return applied, nil
}
