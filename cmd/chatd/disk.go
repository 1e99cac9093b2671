package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"chatd/internal/metrics"
	"chatd/storage"
)

// diskCheckEvery is how often the disk monitor looks at the data folder's
// free space and the store's disk-full state.
const diskCheckEvery = 10 * time.Second

// diskMonitor watches the data folder's disk: it logs a warning when the
// free space falls under disk_warn_free (and when it is back above), an
// error when the store starts refusing writes for lack of space (and
// when it stops), and keeps the figures for /metrics. Its Run goroutine
// owns low and full; the figures are atomics read by the scrape.
type diskMonitor struct {
	dir    string
	warn   uint64
	log    zerolog.Logger
	statfs func(dir string) (free, total uint64, err error) // storage.FreeSpace
	store  func() bool                                      // the store's DiskFull; nil before it opens
	failed func() bool                                      // the store's Failed; nil before it opens

	free, total atomic.Uint64
	known       atomic.Bool // free and total have been read at least once

	low, full, broken bool // the state last logged (Run's goroutine)
}

func newDiskMonitor(dir string, warn int, log zerolog.Logger) *diskMonitor {
	return &diskMonitor{dir: dir, warn: uint64(warn), log: log, statfs: storage.FreeSpace}
}

// check reads the free space and the store's state once and logs what
// changed. starting words the low-space warning for a start.
func (m *diskMonitor) check(starting bool) {
	free, total, err := m.statfs(m.dir)
	if err != nil {
		m.log.Debug().Err(err).Str("dir", m.dir).Msg("disk free space unknown")
	} else {
		m.free.Store(free)
		m.total.Store(total)
		m.known.Store(true)
		low := free < m.warn
		switch {
		case low && starting:
			m.log.Warn().Str("dir", m.dir).Str("free", mib(free)).Str("disk_warn_free", mib(m.warn)).
				Msg("starting with little free space on the data folder's disk: writes are refused with \"disk full\" once it runs out")
		case low && !m.low:
			m.log.Warn().Str("dir", m.dir).Str("free", mib(free)).Str("disk_warn_free", mib(m.warn)).
				Msg("the data folder's disk is running out of space: writes are refused with \"disk full\" once it runs out")
		case !low && m.low:
			m.log.Info().Str("dir", m.dir).Str("free", mib(free)).Msg("the data folder's disk has enough free space again")
		}
		m.low = low
	}
	if m.store == nil {
		return
	}
	full := m.store()
	switch {
	case full && !m.full:
		m.log.Error().Str("dir", m.dir).Str("free", mib(m.free.Load())).
			Msg("disk full: writes are refused (unavailable) until space is freed; reads and logins go on, and writes resume by themselves")
	case !full && m.full:
		m.log.Info().Str("dir", m.dir).Msg("disk no longer full: writes are accepted again")
	}
	m.full = full
	if m.failed != nil && !m.broken && m.failed() {
		m.broken = true
		m.log.Error().Str("dir", m.dir).
			Msg("a commit to the database file failed (an I/O error, not a full disk): writes are refused until chatd is restarted; the write-ahead log holds every acknowledged write")
	}
}

// Run checks every diskCheckEvery until ctx ends.
func (m *diskMonitor) Run(ctx context.Context) error {
	t := time.NewTicker(diskCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m.check(false)
		}
	}
}

// writeMetrics adds the disk's families to /metrics.
func (m *diskMonitor) writeMetrics(w *metrics.Writer) {
	if m.known.Load() {
		free := m.free.Load()
		w.Gauge("chatd_disk_free_bytes", "Bytes free (for chatd) on the data folder's disk, checked every 10s.", float64(free))
		w.Gauge("chatd_disk_total_bytes", "Size of the data folder's disk.", float64(m.total.Load()))
		w.Gauge("chatd_disk_low", "1 while the data folder's disk has less free than disk_warn_free.", b2f(free < m.warn))
	}
	if m.store != nil {
		w.Gauge("chatd_disk_full", "1 while the store refuses writes because the disk is full (since the last write that failed for lack of space, until one succeeds).", b2f(m.store()))
	}
	if m.failed != nil {
		w.Gauge("chatd_store_failed", "1 once a commit to the database file failed with an I/O error: writes are refused until a restart.", b2f(m.failed()))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
