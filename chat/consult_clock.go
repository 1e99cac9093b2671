package chat

import (
	"context"
	"sync"
	"time"
)

// The consultation clock. Every consultation that needs the clock (a
// pending one for its expiry, an active one for its remaining-time events,
// warnings and time up) has exactly one entry in one min-heap keyed by the
// unix-ms time it must next be looked at. One goroutine (consultTimers.run,
// started by Core.Run) sleeps on a single time.Timer until the earliest
// entry is due, pops every due entry and hands them over in one call. No
// goroutine or time.Timer exists per consultation: an entry is 16 bytes in
// the heap plus its slot in the position map.

// ConsultClock tunes the clock's events. Zero values mean the defaults.
type ConsultClock struct {
	// Every is the period of the remaining-time event while active (the
	// client counts down in between). Zero means 10 s.
	Every time.Duration
	// Warnings are the remaining times at which a warning event is sent,
	// in any order. Nil means 5 min, 1 min and 10 s.
	Warnings []time.Duration
}

func (cc *ConsultClock) fill() {
	if cc.Every <= 0 {
		cc.Every = 10 * time.Second
	}
	if cc.Warnings == nil {
		cc.Warnings = []time.Duration{5 * time.Minute, time.Minute, 10 * time.Second}
	}
}

// warningsMS returns the thresholds in ms, largest first.
func (cc *ConsultClock) warningsMS() []int64 {
	out := make([]int64, 0, len(cc.Warnings))
	for _, w := range cc.Warnings {
		if w > 0 {
			out = append(out, w.Milliseconds())
		}
	}
	for i := 1; i < len(out); i++ { // insertion sort, descending: a handful of entries
		for j := i; j > 0 && out[j] > out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// nextWake is when the clock must next look at k (0: never, until a state
// change reschedules it): a pending consultation at its expiry; an active
// one at the first of its deadline, the next whole multiple of every
// (ms) of remaining time (the count-down events fall on round remaining
// times: 20 s, 10 s …, whenever the consultation started or changed), and
// the next warning threshold (warnings in ms, descending).
func nextWake(k *Consultation, now, every int64, warnings []int64) int64 {
	switch k.State {
	case ConsultPending:
		return k.ExpiresAt
	case ConsultActive:
	default:
		return 0
	}
	dl := k.Deadline()
	rem := dl - now
	at := dl
	if m := (rem - 1) / every * every; m > 0 && dl-m < at {
		at = dl - m
	}
	for _, w := range warnings {
		if w < rem { // the largest threshold not yet reached is crossed first
			if t := dl - w; t < at {
				at = t
			}
			break
		}
	}
	return at
}

// crossedTick reports whether the remaining time went past a whole
// multiple of every (ms) from before to after: the count-down is due.
func crossedTick(before, after, every int64) bool {
	return after > 0 && (after-1)/every < (before-1)/every
}

// crossedWarning returns the threshold crossed when the remaining time went
// from before to after (both ms), the smallest if several were, or 0.
func crossedWarning(before, after int64, warnings []int64) int64 {
	var hit int64
	for _, w := range warnings {
		if before > w && after <= w {
			hit = w // descending: the last hit is the smallest
		}
	}
	return hit
}

type timerEntry struct {
	at int64 // unix ms
	id SessionID
}

// consultTimers is the one timer structure for every consultation.
type consultTimers struct {
	mu   sync.Mutex // guards h and pos; a leaf
	h    []timerEntry
	pos  map[SessionID]int // id → index in h
	wake chan struct{}     // cap 1: the earliest entry moved earlier
}

func newConsultTimers() *consultTimers {
	return &consultTimers{pos: make(map[SessionID]int), wake: make(chan struct{}, 1)}
}

// set schedules id at `at` (unix ms), replacing its entry; at <= 0 removes
// it.
func (t *consultTimers) set(id SessionID, at int64) {
	t.mu.Lock()
	i, ok := t.pos[id]
	switch {
	case at <= 0:
		if ok {
			t.remove(i)
		}
		t.mu.Unlock()
		return
	case ok:
		t.h[i].at = at
		if !t.up(i) {
			t.down(i)
		}
	default:
		t.h = append(t.h, timerEntry{at: at, id: id})
		i = len(t.h) - 1
		t.pos[id] = i
		t.up(i)
	}
	first := t.h[0].id == id
	t.mu.Unlock()
	if first {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// reset removes every entry (a takeover reloads them all).
func (t *consultTimers) reset() {
	t.mu.Lock()
	t.h = t.h[:0]
	clear(t.pos)
	t.mu.Unlock()
}

// len is the number of scheduled consultations.
func (t *consultTimers) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.h)
}

// at returns id's scheduled time, 0 when it has none.
func (t *consultTimers) at(id SessionID) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.pos[id]; ok {
		return t.h[i].at
	}
	return 0
}

// due pops every entry with at <= now onto dst, earliest first.
func (t *consultTimers) due(now int64, dst []SessionID) []SessionID {
	t.mu.Lock()
	for len(t.h) > 0 && t.h[0].at <= now {
		dst = append(dst, t.h[0].id)
		t.remove(0)
	}
	t.mu.Unlock()
	return dst
}

// next is the earliest scheduled time.
func (t *consultTimers) next() (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.h) == 0 {
		return 0, false
	}
	return t.h[0].at, true
}

func (t *consultTimers) remove(i int) {
	last := len(t.h) - 1
	delete(t.pos, t.h[i].id)
	if i != last {
		t.h[i] = t.h[last]
		t.pos[t.h[i].id] = i
	}
	t.h = t.h[:last]
	if i != last {
		if !t.up(i) {
			t.down(i)
		}
	}
}

func (t *consultTimers) swap(i, j int) {
	t.h[i], t.h[j] = t.h[j], t.h[i]
	t.pos[t.h[i].id] = i
	t.pos[t.h[j].id] = j
}

func (t *consultTimers) up(i int) bool {
	moved := false
	for i > 0 {
		p := (i - 1) / 2
		if t.h[p].at <= t.h[i].at {
			break
		}
		t.swap(i, p)
		i = p
		moved = true
	}
	return moved
}

func (t *consultTimers) down(i int) {
	n := len(t.h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && t.h[r].at < t.h[l].at {
			m = r
		}
		if t.h[i].at <= t.h[m].at {
			return
		}
		t.swap(i, m)
		i = m
	}
}

// run is the clock's goroutine: it waits for the earliest entry (or a
// wake: an earlier entry was set), then hands every due id to fire, in one
// call per pass, with the time it read. now is the core's clock; the
// single time.Timer only decides when to look again, so a replaced clock
// works too (tests call the core's ConsultTick instead of waiting). It
// returns when ctx ends.
func (t *consultTimers) run(ctx context.Context, now func() int64, fire func(now int64, ids []SessionID)) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var ids []SessionID
	for {
		n := now()
		ids = t.due(n, ids[:0])
		if len(ids) > 0 {
			fire(n, ids)
			continue
		}
		d := time.Hour
		if at, ok := t.next(); ok && time.Duration(at-n)*time.Millisecond < d {
			d = time.Duration(at-n) * time.Millisecond
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(d)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-t.wake:
		}
	}
}
