package storage

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"chatd/chat"
)

// A checkpoint writes at most ckptChunk Puts per bbolt transaction while
// it is relaxed (see Bolt.relaxed), ckptChunkBehind when it must catch up,
// and yields the processor every ckptYield Puts (see flush).
//
// Every bbolt commit ends in fdatasync, and on a disk with a write cache
// (a virtual disk here) a sync waits for everything written before it,
// so a WAL sync that lands behind a checkpoint transaction waits for that
// transaction's pages too. With transactions of 1,024 message Puts, the
// messages sent during a checkpoint (~9% of a p2p run at 10k msg/s) were
// 25-46% of those slower than 2 ms end to end; with 256, the checkpoint
// runs longer but the slow messages it adds fell by half (traced runs:
// docs/performance.md, "A WAL sync waits for the checkpoint's pages"). A
// checkpoint that is behind goes back to the bigger transactions: fewer
// syncs and branch page rewrites per message, so it keeps up at 60k
// msg/s.
const (
	ckptChunk       = 256
	ckptChunkBehind = 1024
	ckptYield       = 128
	// ckptMaxRest caps the pause after one chunk's transaction.
	ckptMaxRest = 20 * time.Millisecond
)

// errClosed is returned by Apply and Backup after Close.
var errClosed = errors.New("storage: closed")

// checkpointer runs checkpoints every interval (never when interval < 0)
// and whenever Apply finds the overlay full, until Close. A failed
// checkpoint leaves everything in the WAL and the overlays; the next one
// retries, and Close reports the error if it persists. Failures are
// logged (logError; nil: the log package): the first of a run at once,
// then at most one line a minute counting them, and the recovery.
func (s *Bolt) checkpointer(interval time.Duration, logError func(what string, err error)) {
	defer close(s.done)
	if logError == nil {
		logError = func(what string, err error) {
			if err == nil {
				log.Printf("storage: %s", what)
			} else {
				log.Printf("storage: %s failed: %v", what, err)
			}
		}
	}
	var failed ckptFailures
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-s.stop:
			return
		case <-tick:
		case <-s.kick:
		case <-s.growKick:
			s.growWAL(walGrowSteps)
			continue
		}
		// See above: retried, reported by Close. A full disk is noted for
		// DiskFull.
		failed.note(s.classify(s.checkpointPaced(true)), time.Now(), logError)
	}
}

// ckptFailLogEvery is how often a run of failing checkpoints is logged
// again.
const ckptFailLogEvery = time.Minute

// ckptFailures tracks a run of failed background checkpoints for the log.
type ckptFailures struct {
	n  int       // failures in the run
	at time.Time // when last logged
}

// note records a checkpoint's outcome and logs what is due.
func (f *ckptFailures) note(err error, now time.Time, logError func(string, error)) {
	if errors.Is(err, errClosed) {
		return
	}
	if err == nil {
		if f.n > 0 {
			logError("checkpoint succeeded after "+strconv.Itoa(f.n)+" failures in a row", nil)
		}
		*f = ckptFailures{}
		return
	}
	f.n++
	if f.n == 1 || now.Sub(f.at) >= ckptFailLogEvery {
		what := "checkpoint (the WAL keeps every change; it is retried)"
		if f.n > 1 {
			what = "checkpoint (" + strconv.Itoa(f.n) + " failures in a row; the WAL keeps every change; retried)"
		}
		logError(what, err)
		f.at = now
	}
}

// growWAL grows the active WAL file ahead of its records (wal.grow), at
// most steps chunks, resting after each as long as it took while nobody
// waits for ckptMu; it asks for another call if it stopped short. A
// failure is not reported: growing only spares the WAL's syncs the
// file's metadata, and append extends the file itself.
func (s *Bolt) growWAL(steps int) {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	s.growLocked(steps)
}

// growLocked is growWAL for a caller holding ckptMu.
func (s *Bolt) growLocked(steps int) {
	more, err := s.wal.grow(&s.applyMu, steps, func(took time.Duration) bool {
		if s.ckptWaiters.Load() != 0 {
			return false
		}
		select {
		case <-s.stop:
			return false
		case <-time.After(min(took, ckptMaxRest)):
			return true
		}
	})
	s.classify(err) // noted for DiskFull; append extends the file itself
	if more {
		poke(s.growKick)
	}
}

// poke wakes the checkpointer through ch (capacity 1) without waiting: a
// wake-up already pending stands for this one.
func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// checkpoint writes everything Apply has returned for into bbolt and
// retires its WAL file. Hot Applies continue while bbolt commits: they go to a
// fresh overlay and WAL file.
func (s *Bolt) checkpoint() error { return s.checkpointPaced(false) }

// checkpointPaced is checkpoint; paced (the background checkpointer only)
// lets flush rest between transactions while nobody waits for ckptMu.
func (s *Bolt) checkpointPaced(paced bool) error {
	if paced {
		s.ckptMu.Lock()
	} else {
		s.lockCkpt()
	}
	defer s.ckptMu.Unlock()
	s.pacing = paced
	defer func() { s.pacing = false }()
	if err := s.flush(); err != nil { // one left by a failed checkpoint
		return err
	}
	s.applyMu.Lock()
	if s.closed {
		s.applyMu.Unlock()
		return errClosed
	}
	err := s.freeze()
	s.applyMu.Unlock()
	if err != nil {
		return err
	}
	return s.flush()
}

// lockCkpt takes ckptMu for a caller that must not wait out a paced
// checkpoint: while it waits, flush stops resting between transactions.
func (s *Bolt) lockCkpt() {
	s.ckptWaiters.Add(1)
	s.ckptMu.Lock()
	s.ckptWaiters.Add(-1)
}

// checkpointLocked is checkpoint for a caller holding ckptMu and applyMu:
// when it returns nil, the overlays are empty and bbolt holds everything.
func (s *Bolt) checkpointLocked() error {
	if err := s.flush(); err != nil {
		return err
	}
	if err := s.freeze(); err != nil {
		return err
	}
	return s.flush()
}

// freeze makes the active overlay the frozen one and rotates the WAL with
// it, so the frozen WAL file holds exactly the frozen overlay's records.
// The caller holds ckptMu and applyMu (so active is not being written),
// and frozen is nil.
func (s *Bolt) freeze() error {
	if s.active.empty() && s.wal.size <= walFileHeader {
		return nil
	}
	if err := s.wal.rotate(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	s.mu.Lock()
	s.frozen, s.active = s.active, newOverlay(s.active)
	s.mu.Unlock()
	s.activeN.Store(0)
	s.activeSize.Store(0)
	return nil
}

// flush writes the frozen overlay into bbolt, drops it from memory and
// retires its WAL file (dropFrozen). The caller holds ckptMu, the only
// writer of s.frozen; bbolt commits run without mu, so reads and hot
// Applies go on meanwhile.
//
// The overlay goes in key order (each dirty page is still rewritten once)
// but in transactions of at most ckptChunk (ckptChunkBehind) puts: one
// big transaction held a P for tens of milliseconds of B+tree work and
// commit (10 ms scheduler slices in the execution trace), and the journal
// and event loops queued behind it, which was most of the 1:1 latency
// tail (docs/performance.md, "Checkpoints run in small, paced
// transactions"). While relaxed it also yields every ckptYield puts and
// rests between transactions. Readers still see the whole overlay until
// the last chunk has committed; a crash between chunks replays the frozen
// WAL, which rewrites the same values.
func (s *Bolt) flush() error {
	fr := s.frozen
	if fr == nil {
		return nil
	}
	if err := s.writeOverlay(fr); err != nil {
		return err
	}
	// Readers hold RLock across their bbolt read and overlay lookups: one
	// that started before the commit still sees fr, one after sees bbolt.
	s.mu.Lock()
	s.frozen = nil
	s.mu.Unlock()
	if err := s.wal.dropFrozen(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// writeOverlay writes fr into bbolt in key order, in transactions of at
// most ckptChunk (ckptChunkBehind) puts; see flush. The caller holds
// ckptMu (or is Open, before anything else runs).
func (s *Bolt) writeOverlay(fr *overlay) error {
	b, runs := fr.batch()

	w := &s.cw
	w.checkpoint, w.mayYield = true, s.relaxed
	defer func() {
		w.checkpoint, w.mayYield = false, nil
		w.release()
	}()
	// chunks commits n puts in transactions of at most ckptChunk (or
	// ckptChunkBehind), put(lo, hi, tx) writing [lo, hi) of them.
	chunks := func(n int, put func(lo, hi int, tx *bolt.Tx) error) error {
		for lo := 0; lo < n; {
			start := time.Now()
			size := ckptChunkBehind
			if s.relaxed() {
				size = ckptChunk
			}
			hi := min(lo+size, n)
			if err := s.update(func(tx *bolt.Tx) error { return put(lo, hi, tx) }); err != nil {
				return fmt.Errorf("checkpoint: %w", err)
			}
			s.ckptTxs.Add(1)
			lo = hi
			// The freeze just rotated the WAL, maybe to a new file: the
			// background checkpointer (which, unlike checkpointLocked's
			// callers, does not hold applyMu) grows it a step between
			// transactions rather than only after the whole checkpoint.
			if s.pacing {
				select {
				case <-s.growKick:
					s.growLocked(1)
				default:
				}
			}
			// Pace: rest as long as the transaction took (its fsync most
			// of all), so that the WAL's syncs, which share the disk,
			// queue behind one chunk's pages at a time rather than a
			// whole checkpoint's.
			if s.relaxed() {
				time.Sleep(min(time.Since(start), ckptMaxRest))
				runtime.Gosched()
			}
		}
		return nil
	}
	var sub chat.Batch
	apply := func(tx *bolt.Tx) error {
		w.prepare(&sub)
		return w.apply(tx, &sub)
	}
	var msgs []chat.Message // one chunk's messages, reused
	err := chunks(fr.n, func(lo, hi int, tx *bolt.Tx) error {
		msgs, runs = nextMsgs(msgs, runs, hi-lo)
		sub = chat.Batch{Messages: msgs}
		return apply(tx)
	})
	clear(msgs[:cap(msgs)])
	if err == nil {
		err = chunks(len(b.Summaries), func(lo, hi int, tx *bolt.Tx) error {
			sub = chat.Batch{Summaries: b.Summaries[lo:hi]}
			return apply(tx)
		})
	}
	if err == nil {
		err = chunks(len(b.Reads), func(lo, hi int, tx *bolt.Tx) error {
			sub = chat.Batch{Reads: b.Reads[lo:hi]}
			return apply(tx)
		})
	}
	if err == nil {
		ops := fr.recordOps()
		err = chunks(len(ops), func(lo, hi int, tx *bolt.Tx) error {
			return w.putRecordOps(tx, ops[lo:hi])
		})
	}
	return err
}

// relaxed reports whether a checkpoint may give way to the hot path
// (yield, rest between transactions): only the background checkpointer,
// only while nobody waits for ckptMu (a direct write, Backup, Close), and
// only while the next overlay is less than half full. A checkpoint that
// is behind runs flat out: under saturation the overlay outgrew a
// yielding one (at 60k msg/s offered it reached the hard limit and sends
// stalled for seconds).
func (s *Bolt) relaxed() bool {
	return s.pacing && s.ckptWaiters.Load() == 0 && s.activeN.Load() < s.maxMsgs/2
}

// recover replays the WAL files left by a crash (the frozen one, then the
// active one) into bbolt, deletes them and starts an empty WAL. The
// records are gathered into an overlay and written the way a checkpoint
// writes one, in transactions of at most ckptChunkBehind puts, so the
// replay of a long log holds no more than a checkpoint's transaction in
// memory; a crash between the transactions replays the same files again.
// Replaying a record already in bbolt changes nothing: message puts
// rewrite the same values, summaries and read marks only ever rise.
//
// The replayed messages need room in bbolt before the log that holds
// them can be truncated: about as much free space as their records take
// in the log (measured: a 3.3 MiB log replayed with 3.3 MiB free failed,
// with 4 MiB it worked; one transaction or many made no difference, as
// the pages are new ones). A replay that runs out says so, with both
// figures.
func (s *Bolt) recover(noSync bool) error {
	active, frozen := s.path+walSuffix, s.path+walFrozenSuffix
	ov := newOverlay(nil)
	for _, p := range []string{frozen, active} {
		// Record by record: a record's puts and deletes must be applied
		// in the order they were written.
		if _, err := readWALEach(p, ov.add); err != nil {
			return err
		}
	}
	if !ov.empty() {
		if err := s.writeOverlay(ov); err != nil {
			if !isDiskFull(err) {
				return err
			}
			dir := filepath.Dir(s.path)
			msg := fmt.Sprintf("replaying the write-ahead log needs about %d MiB free in %s", ov.size>>20+1, dir)
			if free, _, ferr := FreeSpace(dir); ferr == nil {
				msg += fmt.Sprintf(" (%d MiB free)", free>>20)
			}
			return s.classify(fmt.Errorf("%s; free some space and start chatd again (nothing was lost: the log is kept): %w", msg, err))
		}
	}
	if err := os.Remove(frozen); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	wal, err := openWAL(active, noSync) // truncates the replayed log, durably
	if err != nil {
		return s.classify(err)
	}
	s.wal = wal
	return nil
}
