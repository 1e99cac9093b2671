package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"chatd/chat"
	"chatd/cluster"
	"chatd/internal/config"
	"chatd/pgstore"
	"chatd/storage"
)

// pgOpenTimeout bounds connecting to PostgreSQL and migrating its schema
// at start (a migration of another node holds the lock meanwhile).
const pgOpenTimeout = time.Minute

// openStore opens the store cfg names: the bbolt file <data_dir>/chat.db,
// or the PostgreSQL database of the `store` URL. bolt is the bbolt store,
// nil on PostgreSQL, for what only it has (backups, disk-full state).
func openStore(cfg *config.Config, log zerolog.Logger) (st chat.Store, bolt *storage.Bolt, err error) {
	if cfg.Store != "" {
		ctx, cancel := context.WithTimeout(context.Background(), pgOpenTimeout)
		defer cancel()
		open := pgstore.Open // takes the one-node-per-database lock
		if cfg.ClusterNode != "" {
			open = pgstore.OpenShared // the nodes of a cluster share it
		}
		pg, err := open(ctx, cfg.Store)
		if err != nil {
			return nil, nil, fmt.Errorf("store %s: %w", pgstore.Redact(cfg.Store), err)
		}
		log.Info().Str("store", pgstore.Redact(cfg.Store)).Msg("chat data in PostgreSQL (back it up with pg_dump)")
		return pg, nil, nil
	}
	path := filepath.Join(cfg.DataDir, dbFile)
	bolt, err = storage.Open(path, storage.Options{CheckpointInterval: cfg.CheckpointInterval,
		LogError: logError(log.With().Str("component", "storage").Logger())})
	if errors.Is(err, storage.ErrLocked) {
		return nil, nil, fmt.Errorf("%s is in use by another process (is another chatd running with a different lock? check `chatd status --data %s`)", path, cfg.DataDir)
	}
	if errors.Is(err, chat.ErrDiskFull) {
		return nil, nil, fmt.Errorf("cannot start: the disk of %s is full: %w", cfg.DataDir, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	return bolt, bolt, nil
}

// errPGBackup answers the bbolt-only backup and restore on PostgreSQL.
const errPGBackup = "chat data is in PostgreSQL (the store setting), not in a file chatd can copy: back it up with pg_dump and restore with pg_restore (docs/cluster.md)"

// boltOnly refuses a command that works on the bbolt file when cfg keeps
// chat data in PostgreSQL.
func boltOnly(cfg *config.Config, command string) error {
	if cfg.Store == "" {
		return nil
	}
	return fmt.Errorf("%s: %s", command, errPGBackup)
}

// backupFunc is the admin API's backup: the bbolt store's copy, or on
// PostgreSQL an answer saying to use pg_dump.
func backupFunc(bolt *storage.Bolt) func(io.Writer, func(int64)) (int64, error) {
	if bolt != nil {
		return bolt.BackupSized
	}
	return func(io.Writer, func(int64)) (int64, error) {
		return 0, chat.Errf(chat.CodeUnavailable, errPGBackup)
	}
}

// openCluster joins the cluster cfg names (cluster_node), on st, which
// must be a store several nodes can write; nil, nil when cfg runs a
// single node.
func openCluster(cfg *config.Config, st chat.Store, log zerolog.Logger) (*cluster.Broker, error) {
	if cfg.ClusterNode == "" {
		return nil, nil
	}
	if _, ok := st.(chat.SharedStore); !ok {
		// pgstore implements it in a parallel slice of issue #23.
		return nil, fmt.Errorf("cluster_node: this build's store (%T) cannot be shared by several nodes yet (it does not implement chat.SharedStore); run one node without cluster_node", st)
	}
	clog := log.With().Str("component", "cluster").Logger()
	b, err := cluster.Open(cluster.Config{Name: cfg.ClusterName, Node: cfg.ClusterNode, URL: cfg.NATSURL,
		Listen: cfg.NATSListen, Routes: cfg.NATSRoutes, RouteSecret: cfg.NATSRouteSecret,
		RouteTLSCert: cfg.NATSRouteTLSCert, RouteTLSKey: cfg.NATSRouteTLSKey, RouteTLSCA: cfg.NATSRouteTLSCA,
		Logf: func(f string, a ...any) { clog.Warn().Msgf(f, a...) }})
	if err != nil {
		return nil, err
	}
	ev := clog.Info().Str("node", cfg.ClusterNode).Str("cluster", cfg.ClusterName)
	if cfg.NATSURL != "" {
		ev = ev.Str("nats", "external")
	} else {
		ev = ev.Str("routes_listen", b.RouteURL()).Strs("routes", cfg.NATSRoutes).
			Bool("routes_secret", cfg.NATSRouteSecret != "").Bool("routes_tls", cfg.NATSRouteTLSCert != "")
	}
	ev.Msg("joined the cluster")
	return b, nil
}
