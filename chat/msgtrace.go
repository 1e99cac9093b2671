package chat

import (
	"sync"
	"time"
)

// Message tracing: for a while, the journal notes when each WebSocket
// send passed the points of its way through the server, so that a load
// tool that notes when it sent the message and when the ack and the
// delivery arrived can say where the time went: before chatd decoded the
// message, queued for the journal, in the group commit, waiting behind the
// rest of the batch's delivery, or after chatd wrote the frames. chatbench
// --trace does that join (docs/performance.md, "A slow message is slow in
// every part at once").
//
// Off (the usual case) it costs one atomic load per committed batch and
// per answered send.

// TraceRecord is one WebSocket send's way through the server, as unix
// nanosecond times. Session and Seq identify the message (they are in the
// ack and the event the clients get).
type TraceRecord struct {
	Session SessionID
	Seq     uint64
	// Decoded: the event loop decoded the send and queued it for the
	// journal.
	Decoded int64
	// CommitStart and CommitEnd bracket the store Apply (WAL write and
	// fsync) of the group commit that held it.
	CommitStart, CommitEnd int64
	// Answered: the event had been handed to the recipients' sockets
	// (written, or queued for their event loops) and the ack was next.
	Answered int64
}

// maxTraceRecords bounds one trace: ~48 B a record, so 48 MB at most
// (100 s at 10k msg/s).
const maxTraceRecords = 1_000_000

// msgTracer collects one trace. Guarded by mu: records come from the
// journal and the deliverer.
type msgTracer struct {
	mu   sync.Mutex
	recs []TraceRecord
	max  int
	lost int // records past max
}

func (t *msgTracer) add(r TraceRecord) {
	t.mu.Lock()
	if len(t.recs) < t.max {
		t.recs = append(t.recs, r)
	} else {
		t.lost++
	}
	t.mu.Unlock()
}

// MessageTrace is a running message trace (StartTrace).
type MessageTrace struct {
	c *Core
	t *msgTracer
}

// StartTrace starts recording every WebSocket send answered from now
// until Stop, at most max of them (0 or more than 1,000,000 mean
// 1,000,000). One trace at a time: another StartTrace meanwhile gets
// CodeConflict.
func (c *Core) StartTrace(max int) (*MessageTrace, error) {
	if max <= 0 || max > maxTraceRecords {
		max = maxTraceRecords
	}
	t := &msgTracer{max: max, recs: make([]TraceRecord, 0, min(max, 1<<16))}
	if !c.tracer.CompareAndSwap(nil, t) {
		return nil, Errf(CodeConflict, "a message trace is already running; try again when it ends")
	}
	return &MessageTrace{c: c, t: t}, nil
}

// Stop ends the trace and returns its records, in the order the sends
// were answered, and how many were dropped past max. Only the first Stop
// returns them.
func (m *MessageTrace) Stop() ([]TraceRecord, int) {
	if !m.c.tracer.CompareAndSwap(m.t, nil) {
		return nil, 0
	}
	m.t.mu.Lock() // a record being added as the trace ended is kept
	defer m.t.mu.Unlock()
	return m.t.recs, m.t.lost
}

// traceCommit stamps the ops of a batch with its commit's times (the
// Apply began at start and has just returned) when a trace runs. Called
// by the journal.
func (c *Core) traceCommit(ops []*op, start time.Time) {
	if c.tracer.Load() == nil {
		return
	}
	s, end := start.UnixNano(), time.Now().UnixNano()
	for _, o := range ops {
		o.commitStart, o.commitEnd = s, end
	}
}

// traceAnswered records a send whose event finish has just fanned out,
// right before its ack goes.
func (c *Core) traceAnswered(o *op) {
	t := c.tracer.Load()
	if t == nil || o.commitEnd == 0 || o.dup {
		return
	}
	t.add(TraceRecord{Session: o.msg.Session, Seq: o.msg.Seq, Decoded: o.start,
		CommitStart: o.commitStart, CommitEnd: o.commitEnd, Answered: time.Now().UnixNano()})
}
