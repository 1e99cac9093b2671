package chat

import (
	"context"
	"runtime"
	"strconv"
	"time"
)

// Message retention: an app's messages older than its RetentionDays are
// deleted by a background pass (RunRetention), never on the hot path. The
// store deletes them in small transactions (RetentionConfig.Chunk), oldest
// first in each session, and keeps the sessions themselves: LastSeq, the
// last-message summary, members and their read marks. Seqs are never
// reused or renumbered; a session's history just starts later.

// MaxRetentionDays bounds App.RetentionDays (100 years).
const MaxRetentionDays = 36500

// RetentionConfig tunes RunRetention.
type RetentionConfig struct {
	// DefaultDays applies to apps whose RetentionDays is 0. Zero keeps
	// their messages.
	DefaultDays int
	// Every is the time between passes. Zero means one hour.
	Every time.Duration
	// Chunk is how many messages one store transaction deletes. Zero
	// means 512.
	Chunk int
	// Report, if set, is told the outcome of each app's pass that
	// deleted something or failed (the process logs it).
	Report func(app string, days, deleted int, err error)
}

// RetentionDaysOf is the retention in force for a: its own, else
// defaultDays; 0 keeps everything.
func RetentionDaysOf(a App, defaultDays int) int {
	switch {
	case a.RetentionDays < 0:
		return 0
	case a.RetentionDays > 0:
		return a.RetentionDays
	}
	return max(defaultDays, 0)
}

// SetRetention sets an app's RetentionDays: 0 uses the server's default,
// -1 keeps its messages whatever the default, N > 0 deletes those older
// than N days at the next pass.
func (c *Core) SetRetention(ctx context.Context, app string, days int) (App, error) {
	if days < -1 || days > MaxRetentionDays {
		return App{}, Errf(CodeBadRequest, "retention_days must be -1 (keep forever), 0 (the server's default) or 1.."+strconv.Itoa(MaxRetentionDays)+", not "+strconv.Itoa(days))
	}
	c.appMu.Lock() // read-modify-write of the app record
	defer c.appMu.Unlock()
	a, err := c.store.App(ctx, app)
	if err != nil {
		return App{}, err
	}
	a.RetentionDays = days
	if err := c.write(ctx, &Batch{Apps: []App{a}}); err != nil {
		return App{}, err
	}
	return a, nil
}

// PruneOnce runs one retention pass over every app and returns how many
// messages it deleted. The cutoff is the core's clock (Config.Now) minus
// each app's retention.
func (c *Core) PruneOnce(ctx context.Context, rc RetentionConfig) (int, error) {
	chunk := rc.Chunk
	if chunk <= 0 {
		chunk = 512
	}
	apps, err := c.store.Apps(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	var first error
	for _, a := range apps {
		days := RetentionDaysOf(a, rc.DefaultDays)
		if days == 0 {
			continue
		}
		cutoff := c.cfg.Now().Add(-time.Duration(days) * 24 * time.Hour).UnixMilli()
		deleted := 0
		var from SessionID
		for ctx.Err() == nil {
			n, next, err := c.store.PruneMessages(ctx, a.ID, cutoff, from, chunk)
			deleted += n
			if err != nil {
				if first == nil {
					first = err
				}
				if rc.Report != nil {
					rc.Report(a.ID, days, deleted, err)
				}
				break
			}
			if next == 0 {
				if rc.Report != nil && deleted > 0 {
					rc.Report(a.ID, days, deleted, nil)
				}
				break
			}
			from = next
			runtime.Gosched() // between transactions: the hot path first
		}
		total += deleted
	}
	return total, first
}

// RunRetention runs a pass now and every rc.Every until ctx ends. Failed
// passes go to rc.Report and are retried at the next one.
func (c *Core) RunRetention(ctx context.Context, rc RetentionConfig) error {
	every := rc.Every
	if every <= 0 {
		every = time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		c.PruneOnce(ctx, rc) // failures reported through rc.Report
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
