package chat

import (
	"context"
	"encoding/binary"
)

// Who runs the consultations' clocks, and how a node takes them over
// (docs/consultations.md, "On a cluster" and "The restart rule").
//
// One node at a time owns the consultations: on a single node that is the
// node; in a cluster the holder of the "domains" lease (owner.go). The
// owner keeps every open consultation in memory and runs its clock. When a
// node becomes the owner it drops what it had in memory and loads every
// open consultation from the store (consultTakeOver); at start a node
// loads them by the restart rule (loadConsults).
//
// The takeover holds consultState.gate for writing while it reads the
// store and installs what it read; every change of a consultation on this
// node (create, an action, the clock's ends, the stop's checkpoint) holds
// it for reading until the change is durable, so the load sees every
// change this node committed and none is made to an entry the load
// replaced (a replaced entry is marked gone; an action that reached one
// looks again).

// consultTakeOver resets this node's consultation state and loads it from
// the store, as the new owner. prev is what SharedStore.Lease returned for
// the lease just before this node took it.
//
//   - prev.Holder != "": the previous owner stopped renewing (it died, or
//     was cut off from the store) while the cluster served; its lease ran
//     out prev.Left ago (Left <= 0; a live lease counts as 0). Every
//     consultation's time ran by the wall clock from its last saved
//     checkpoint up to then, and goes on from now (Consultation.TakeOver):
//     one that ran out meanwhile ends at once, time_up, at its deadline.
//   - prev.Holder == "": nobody held it (the first owner, or the previous
//     one stopped gracefully: it saved every consultation's checkpoint,
//     then released the lease). The restart rule: each goes on from now
//     with the time left at its checkpoint.
//
// Pending consultations keep their expiry (a wall-clock time) either way.
// When it returns, the consultations that ran out or expired are ended
// (durable, announced), if the core is running. On an error nothing
// changed; the caller may try again.
func (c *Core) consultTakeOver(ctx context.Context, prev LeaseInfo) error {
	now := c.nowMS()
	var servedUntil int64 // 0: the restart rule
	if prev.Holder != "" {
		servedUntil = now + min(prev.Left, 0).Milliseconds()
	}
	running := c.running.Load()
	due, err := c.consultReload(ctx, now, servedUntil, running)
	if err != nil {
		return err
	}
	c.consultFire(ctx, now, due)
	return nil
}

// loadConsults puts every consultation that was not final at the stop
// back on the clock at start, by the restart rule (Consultation.Resume);
// those due already are ended by the clock when Run starts it.
func (c *Core) loadConsults(ctx context.Context) error {
	_, err := c.consultReload(ctx, c.nowMS(), 0, false)
	return err
}

// consultDrop forgets every open consultation and stops their clocks: for
// a node that is no longer the owner (it lost or released the lease).
func (c *Core) consultDrop() {
	st := &c.consult
	st.gate.Lock()
	defer st.gate.Unlock()
	c.consultInstall(make(map[SessionID]*consultEntry), make(map[string]int))
}

// consultReload reads every open consultation from the store, applies the
// takeover rule at now (servedUntil 0: the restart rule) and installs them
// in place of what this node had. With fireNow, the ones already due (run
// out, expired) are not scheduled but returned, for the caller to end at
// once (consultFire) after the gate is released.
func (c *Core) consultReload(ctx context.Context, now, servedUntil int64, fireNow bool) ([]SessionID, error) {
	st := &c.consult
	st.gate.Lock()
	defer st.gate.Unlock()
	recs, err := c.store.ScanRecords(ctx, kindConsultLive, nil, nil, 0, false)
	if err != nil {
		return nil, err
	}
	m := make(map[SessionID]*consultEntry, len(recs))
	live := make(map[string]int)
	wake := make([]timerEntry, 0, len(recs))
	for _, r := range recs {
		if len(r.Key) != 8 {
			continue
		}
		id := SessionID(binary.BigEndian.Uint64(r.Key))
		k, err := c.loadConsult(ctx, id)
		if err != nil {
			return nil, err
		}
		s, err := c.session(ctx, k.App, id)
		if err != nil {
			return nil, err
		}
		k.TakeOver(servedUntil, now)
		m[id] = &consultEntry{s: s, k: k, lastRem: k.RemainingAt(now)}
		live[liveKey(k.App, k.Consultant)]++
		wake = append(wake, timerEntry{id: id, at: nextWake(&k, now, st.every, st.warn)})
	}
	c.consultInstall(m, live)
	var due []SessionID
	for _, w := range wake {
		if fireNow && w.at > 0 && w.at <= now {
			due = append(due, w.id)
			continue
		}
		st.timers.set(w.id, w.at)
	}
	return due, nil
}

// consultInstall replaces the open consultations with m (none scheduled
// yet) and the per-consultant counts with live; the entries it replaces
// are marked gone and their timers removed. Called with the gate held for
// writing.
func (c *Core) consultInstall(m map[SessionID]*consultEntry, live map[string]int) {
	st := &c.consult
	st.mu.Lock()
	old := st.m
	st.m, st.live = m, live
	st.mu.Unlock()
	for _, e := range old {
		e.mu.Lock()
		e.gone = true
		e.mu.Unlock()
	}
	st.timers.reset()
}
