package chat

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"
)

// op is one write waiting for the journal. Exactly one of msg and batch is
// set. Completion goes to cl (a WebSocket reply), res (a blocking caller) or
// both may be nil (fire and forget, e.g. read marks from HTTP).
type op struct {
	// message write
	msg     Message
	sess    *sess
	preview string
	origin  *Client // the connection that sent it: replied to, not echoed
	reqID   []byte  // raw JSON id of the request, for reply_to
	start   int64   // unix nanos when the send was decoded (SendAckSeconds)
	// backdated: msg.CreatedAt was given by the host (SendInput.CreatedAt);
	// the journal refuses it when it is before the session's last message.
	backdated bool

	// set by the journal only while a message trace runs (msgtrace.go)
	commitStart, commitEnd int64

	// generic write
	batch *Batch

	// attach, when set on a message write, runs on the journal goroutine
	// right after the message got its seq and joined the commit, and adds
	// the domain records that must be durable with it (records.go) to b:
	// the message and they commit together or not at all. It must not
	// block or take locks, and its records must be valid (ValidKind,
	// ValidRecordKey): a bad one fails the whole group commit. Not called for a retried cid (nothing new is
	// stored).
	attach func(m *Message, b *Batch)

	res chan opResult

	// broadcasts (broadcast.go): the uids it is for (nil: every user),
	// and how many devices the fan-out pushed it to
	audience  []string
	delivered int

	// filled by the journal
	result    opResult
	dup       bool // CID matched an earlier send: nothing new stored
	dupStored bool // …and that earlier send was already durable
}

type opResult struct {
	send SendResult
	err  error
}

// errDiskFull answers writes the store refused for lack of space. The
// store retries nothing itself: the same write succeeds once space is
// freed (reads and logins go on meanwhile).
var errDiskFull = Errf(CodeUnavailable, "disk full: the server cannot store anything until space is freed on its data disk; retry later")

// errJournalClosed answers writes submitted after stopping began (Drain,
// or Run's ctx ending).
var errJournalClosed = Errf(CodeUnavailable, "server is stopping")

// submit queues o. It blocks at most 2 s when the journal is full (the disk
// is behind), then answers unavailable.
func (c *Core) submit(ctx context.Context, o *op) error {
	c.submitMu.RLock()
	defer c.submitMu.RUnlock()
	if c.closing.Load() {
		return errJournalClosed
	}
	select {
	case c.journal <- o:
		return nil
	default:
	}
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case c.journal <- o:
		return nil
	case <-t.C:
		return Errf(CodeUnavailable, "write queue full: the store is not keeping up; retry")
	case <-ctx.Done():
		return Errf(CodeUnavailable, "request cancelled")
	}
}

// write commits b through the journal and waits for it to be durable.
func (c *Core) write(ctx context.Context, b *Batch) error {
	// A bad record would fail the whole group commit, everyone's sends
	// with it: refuse it here, alone.
	for i := range b.Records {
		if !ValidKind(b.Records[i].Kind) || !ValidRecordKey(b.Records[i].Key) {
			return errors.New("chat: write: invalid record kind or key in " + strconv.Quote(b.Records[i].Kind))
		}
	}
	for _, k := range b.DelRecords {
		if !ValidKind(k.Kind) || !ValidRecordKey(k.Key) {
			return errors.New("chat: write: invalid record kind or key in " + strconv.Quote(k.Kind))
		}
	}
	o := &op{batch: b, res: make(chan opResult, 1)}
	if err := c.submit(ctx, o); err != nil {
		return err
	}
	r := <-o.res // always answered, even at shutdown
	return r.err
}

// runJournal is the single writer: it drains up to MaxBatch queued writes
// into one Batch, assigns seqs, resolves CIDs, commits with one Apply (one
// fsync) and hands the finished ops to the delivery goroutine. It returns
// once ctx is done (or Drain was called) and the queue is empty.
func (c *Core) runJournal(ctx context.Context) error {
	j := journalState{
		lastSeq: make(map[SessionID]uint64),
		cids:    make(map[cidKey]*op),
		cid:     cidState{sessions: make(map[SessionID]*cidSession)},
		hists:   c.hists,
	}
	var batch Batch
	for {
		select {
		case first := <-c.journal:
			c.commit(&j, &batch, c.gather(first))
		case <-ctx.Done():
			c.closeJournal(&j, &batch)
			return nil
		case <-c.drainReq:
			c.closeJournal(&j, &batch)
			return nil
		}
	}
}

// closeJournal refuses new writes, commits what the submitters already
// past the closing check queue (committing meanwhile, so one waiting for
// room gets it), then everything left: nothing is left unanswered.
func (c *Core) closeJournal(j *journalState, batch *Batch) {
	c.closing.Store(true)
	for !c.submitMu.TryLock() {
		if ops := c.gather(nil); len(ops) > 0 {
			c.commit(j, batch, ops)
		} else {
			time.Sleep(50 * time.Microsecond) // a submitter between its check and its enqueue
		}
	}
	c.submitMu.Unlock()
	for {
		ops := c.gather(nil)
		if len(ops) == 0 {
			return
		}
		c.commit(j, batch, ops)
	}
}

// gather returns first (when not nil) and whatever else is queued, up to
// MaxBatch, in a slice recycled by the deliverer: each commit hands its
// slice over to the deliverer, which gives it back when done.
func (c *Core) gather(first *op) []*op {
	var ops []*op
	select {
	case ops = <-c.spare:
	default:
		ops = make([]*op, 0, c.cfg.MaxBatch)
	}
	if first != nil {
		ops = append(ops, first)
	}
	for len(ops) < c.cfg.MaxBatch {
		select {
		case o := <-c.journal:
			ops = append(ops, o)
		default:
			return ops
		}
	}
	return ops
}

// cidKey identifies a client message id within a batch: a sender's CID in
// one session (see cidring.go).
type cidKey struct {
	session   SessionID
	from, cid string
}

// journalState is owned by the journal goroutine.
type journalState struct {
	lastSeq map[SessionID]uint64 // authoritative: only the journal appends messages
	// lastAt: the created_at of the last message of the sessions that got a
	// backdated send (and only those, so other sends pay one len check).
	lastAt map[SessionID]int64
	// floorAt: the newest created_at the journal has given a seq. A live
	// send is stamped when it is built, before it reaches the journal, so
	// two racing sends can arrive in the other order; one stamped earlier
	// than floorAt takes floorAt, so seq order is time order.
	floorAt int64
	cids    map[cidKey]*op // CIDs in the batch being built
	cid     cidState       // senders' recent CIDs of sessions that got sends with one (cidring.go)
	touched []SessionID    // scratch: sessions given seqs by the batch being built
	failure commitFailure  // the failed commits being logged
	fence   *Fence         // the fence of the batch being built (commit)
	hists   *storeHists    // commit metrics (metrics.go)
}

func (c *Core) commit(j *journalState, b *Batch, ops []*op) {
	if c.owner != nil {
		// The domains' owner's writes name its lease (Batch.Fence): they
		// commit on their own, so that a lost lease fails them only.
		if rest, fenced := splitFenced(ops); fenced != nil {
			if len(rest) > 0 {
				c.commitOps(j, b, rest)
			}
			j.fence = fenced[0].batch.Fence
			c.commitOps(j, b, fenced)
			j.fence = nil
			return
		}
	}
	c.commitOps(j, b, ops)
}

// splitFenced moves ops' fenced writes (Batch.Fence) to a slice of their
// own, keeping both in order; fenced is nil when there are none.
func splitFenced(ops []*op) (rest, fenced []*op) {
	n := 0
	for _, o := range ops {
		if o.batch != nil && o.batch.Fence != nil {
			fenced = append(fenced, o)
			continue
		}
		ops[n] = o
		n++
	}
	if fenced == nil {
		return ops, nil
	}
	clear(ops[n:])
	return ops[:n], fenced
}

func (c *Core) commitOps(j *journalState, b *Batch, ops []*op) {
	ctx := context.Background()
	var err error
	var touched []SessionID
	start := time.Now()
	if c.shared != nil {
		// Other nodes append to the same sessions: the seqs come from
		// the store, under its locks (shared.go).
		touched, err = c.buildShared(ctx, j, b, ops)
	} else {
		touched = c.build(ctx, j, b, ops)
		if !b.Empty() {
			start = time.Now()
			err = c.store.Apply(ctx, b)
		}
	}
	if !b.Empty() {
		c.traceCommit(ops, start)
		c.stats.commitNanos.Store(int64(time.Since(start)))
		c.stats.commits.Add(1)
		c.stats.lastBatch.Store(int64(len(ops)))
		j.hists.observe(start, len(ops))
	}
	c.finishCommit(j, b, ops, touched, err)
}

// build fills b with ops' writes: CIDs resolved, seqs assigned (from
// j.lastSeq, read from the store for a session not seen yet), each
// message's attached records and webhook events. It returns the sessions
// given seqs.
func (c *Core) build(ctx context.Context, j *journalState, b *Batch, ops []*op) []SessionID {
	b.Reset()
	b.Fence = j.fence
	clear(j.cids)
	touched := j.touched[:0]
	for _, o := range ops {
		if o.batch != nil {
			n := len(b.Records)
			appendBatch(b, o.batch)
			if len(b.Records) > n {
				c.numberOutbox(b.Records[n:])
			}
			continue
		}
		m := &o.msg
		if m.CID != "" {
			key := cidKey{session: m.Session, from: m.From, cid: m.CID}
			if prev, ok := j.cids[key]; ok {
				o.dup = true
				o.result.send = prev.result.send
				o.result.send.Duplicate = true
				continue
			}
			old, found, err := c.findCID(ctx, j, m)
			if err != nil {
				o.result.err = c.clientError("reading session "+strconv.FormatUint(uint64(m.Session), 10)+"'s messages for the cid check", err)
				continue
			}
			if found {
				o.dup, o.dupStored = true, true
				o.result.send = SendResult{Session: old.Session, Seq: old.Seq, CreatedAt: old.CreatedAt, Duplicate: true}
				continue
			}
			j.cids[key] = o
		}
		last, ok := j.lastSeq[m.Session]
		if !ok {
			s, err := c.store.Session(ctx, m.Session)
			if err != nil {
				o.result.err = c.clientError("reading session "+strconv.FormatUint(uint64(m.Session), 10)+" for its last seq", err)
				continue
			}
			last = s.LastSeq
			// The messages are the ground truth: never hand out a seq that
			// is already stored, whatever the summary says.
			if ms, err := c.store.Messages(ctx, m.Session, last+1, ^uint64(0), 1, true); err == nil && len(ms) == 1 {
				last = ms[0].Seq
			}
		}
		if o.backdated {
			if err := c.checkBackdate(ctx, j, b, m, last); err != nil {
				o.result.err = err
				continue
			}
		}
		if m.CreatedAt < j.floorAt && !o.backdated {
			m.CreatedAt = j.floorAt
		} else if m.CreatedAt > j.floorAt {
			j.floorAt = m.CreatedAt
		}
		m.Seq = last + 1
		j.lastSeq[m.Session] = m.Seq
		if len(j.lastAt) > 0 {
			if _, ok := j.lastAt[m.Session]; ok {
				j.lastAt[m.Session] = m.CreatedAt
			}
		}
		touched = append(touched, m.Session)
		b.Messages = append(b.Messages, *m)
		b.Summaries = append(b.Summaries, Summary{Session: m.Session, Seq: m.Seq, At: m.CreatedAt, From: m.From, Type: m.Type, Preview: o.preview})
		if m.From != "" {
			b.Reads = append(b.Reads, ReadMark{Session: m.Session, UID: m.From, Seq: m.Seq})
		}
		if o.attach != nil {
			o.attach(m, b)
		}
		if c.wh.subs.Load() != nil && c.wh.wanted(m.App)&webhookMessageBits != 0 {
			c.webhookMessage(o, b)
		}
		o.result.send = SendResult{Session: m.Session, Seq: m.Seq, CreatedAt: m.CreatedAt}
	}
	return touched
}

// finishCommit learns from a commit (err: how it went) and answers its ops.
func (c *Core) finishCommit(j *journalState, b *Batch, ops []*op, touched []SessionID, err error) {
	if err == nil && len(b.Records) > 0 {
		c.webhookCommitted(b)
	}
	if err == nil && c.cluster != nil {
		c.cluster.invalidate(b) // other nodes reload the sessions it changed (broker.go)
	}
	if err == nil && j.failure.msg != "" && !b.Empty() {
		if j.failure.writes > 0 {
			c.cfg.LogError("journal: "+strconv.Itoa(j.failure.writes)+" more writes (not logged one by one) were refused before commits succeeded again",
				errors.New(j.failure.msg))
		}
		j.failure = commitFailure{}
	}
	if err == nil {
		// Durable: the sessions' CID lists learn the new messages.
		for _, o := range ops {
			if o.batch != nil || o.result.err != nil || o.dup {
				continue
			}
			if s := j.cid.sessions[o.msg.Session]; s != nil {
				j.cid.record(s, &o.msg)
			}
		}
		if j.cid.entries > maxCIDEntries {
			j.cid.evict(0)
		}
	}
	if errors.Is(err, ErrDiskFull) {
		err = errDiskFull // the store refuses writes until space is freed
	} else if errors.Is(err, ErrFenced) {
		err = errOwnerChanging // this node lost the domains lease (owner.go)
	}
	if err != nil {
		err = j.commitFailed(c, err, b, len(ops))
		// Nothing in this batch is durable: forget the seqs handed out so the
		// next batch re-reads them from the store.
		for _, sid := range touched {
			delete(j.lastSeq, sid)
		}
		clear(j.lastAt)
		for _, o := range ops {
			if o.result.err == nil && !o.dupStored {
				o.result.err = err
			}
		}
	}
	j.touched = touched[:0]
	if w := fanoutWeight(ops); c.delivering.Load() == 0 && w <= inlineDeliverWeight {
		// Nothing earlier is still being delivered, so answering here
		// keeps commit order; and it saves the hand-over, a goroutine
		// wake-up that cost ~90 µs (p50) to 0.5 ms (p99) on a busy
		// 2-core box — more than fanning out a small batch.
		c.deliverBatch(ops, w <= directDeliverWeight)
		return
	}
	c.delivering.Add(1)
	c.deliver <- ops
}

// commitFailure collapses a run of commits failing the same way into one
// log line a second (a store that fails keeps failing, once per batch).
type commitFailure struct {
	msg    string    // the last error logged
	at     time.Time // when
	writes int       // writes refused since, for the same reason, not logged yet
}

// commitFailed logs a commit of ops writes (b) that failed with err, and
// returns what their clients are told: err itself when it is a client
// error (the store's way to say "unavailable"), else `internal`.
func (j *journalState) commitFailed(c *Core, err error, b *Batch, ops int) error {
	now := c.cfg.Now()
	msg := err.Error()
	if msg == j.failure.msg && now.Sub(j.failure.at) < time.Second {
		j.failure.writes += ops
	} else {
		what := "journal: committing " + strconv.Itoa(ops) + " writes (" + strconv.Itoa(len(b.Messages)) + " messages)"
		if j.failure.writes > 0 {
			what += " (and " + strconv.Itoa(j.failure.writes) + " writes refused earlier, for the same reason, not logged)"
		}
		c.cfg.LogError(what, err)
		j.failure = commitFailure{msg: msg, at: now}
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Errf(CodeInternal, "internal error: storing the write failed; the server log has details")
}

// inlineDeliverWeight bounds the fan-out the journal does itself (see
// fanoutWeight): bigger batches go to the deliverer so the next commit's
// fsync overlaps their delivery.
const inlineDeliverWeight = 64

// directDeliverWeight bounds the fan-out for which the journal also
// writes the frames to idle sockets itself (NowSender) instead of waking
// each recipient's event loop: a write costs ~6–10 µs of the journal's
// time, the wake-up it saves a thread hand-over that is cheap on average
// but slow in the tail. Past this the loops' coalesced writes win, and the
// journal's time is better spent on the next commit. Why 16 and not 8 or
// 32: docs/performance.md, "The journal writes small deliveries to idle
// sockets itself".
const directDeliverWeight = 16

// fanoutWeight estimates the delivery work of a batch: the members each
// message goes to, one for every other op.
func fanoutWeight(ops []*op) int {
	w := 0
	for _, o := range ops {
		if o.batch == nil && o.sess != nil && o.result.err == nil && !o.dup {
			if o.sess.kind == KindBroadcast {
				w += inlineDeliverWeight + 1 // to every online user: the deliverer's (broadcast.go)
			}
			w += len(o.sess.members().users)
		} else {
			w++
		}
	}
	return w
}

func appendBatch(dst, src *Batch) {
	dst.Apps = append(dst.Apps, src.Apps...)
	dst.Users = append(dst.Users, src.Users...)
	dst.Tokens = append(dst.Tokens, src.Tokens...)
	dst.DelTokens = append(dst.DelTokens, src.DelTokens...)
	dst.DelUserTokens = append(dst.DelUserTokens, src.DelUserTokens...)
	dst.Sessions = append(dst.Sessions, src.Sessions...)
	dst.Members = append(dst.Members, src.Members...)
	dst.DelMembers = append(dst.DelMembers, src.DelMembers...)
	dst.Messages = append(dst.Messages, src.Messages...)
	dst.Summaries = append(dst.Summaries, src.Summaries...)
	dst.Reads = append(dst.Reads, src.Reads...)
	dst.Records = append(dst.Records, src.Records...)
	dst.DelRecords = append(dst.DelRecords, src.DelRecords...)
	dst.DelUsers = append(dst.DelUsers, src.DelUsers...)
	dst.Restrictions = append(dst.Restrictions, src.Restrictions...)
	dst.DelRestrictions = append(dst.DelRestrictions, src.DelRestrictions...)
}

// runDeliver answers every committed op and fans messages out, in commit
// order, for the batches the journal hands over (large ones, or any while
// an earlier one is still being delivered). It runs beside the journal so
// the next commit overlaps their delivery.
func (c *Core) runDeliver() {
	for ops := range c.deliver {
		c.deliverBatch(ops, false)
		c.delivering.Add(-1)
	}
}

// deliverBatch answers and fans out one committed batch, in order, and
// recycles its slice. Run by the deliverer, or by the journal when the
// deliverer is idle. now: write to idle sockets directly (see
// directDeliverWeight).
func (c *Core) deliverBatch(ops []*op, now bool) {
	for _, o := range ops {
		c.finish(o, now)
	}
	clear(ops) // drop the ops for the collector
	select {
	case c.spare <- ops[:0]:
	default:
	}
}

func (c *Core) finish(o *op, now bool) {
	if o.batch != nil {
		if o.res != nil {
			o.res <- o.result
		}
		return
	}
	shared := false
	if o.result.err == nil && !o.dup {
		c.stats.messagesIn.Add(1)
		shared = c.fanout(o, now)
	}
	if o.origin != nil {
		if o.result.err != nil {
			o.origin.replyErr(o.reqID, "send", o.result.err)
		} else {
			// Observed before the reply is queued, so that whoever
			// reads the ack also sees it counted.
			if o.start != 0 {
				c.hists.ack.Observe(uint64(max(time.Now().UnixNano()-o.start, 0)))
			}
			c.traceAnswered(o) // before the ack, so a client that has it finds the record
			o.origin.send(appendSendAck(make([]byte, 0, 160+len(o.reqID)), o.reqID, &o.result.send), now)
		}
	}
	if o.res != nil {
		o.res <- o.result // the caller still holds o
	} else if !shared {
		putOp(o)
	}
}

// opPool recycles the ops of WebSocket sends (one per message: ~290
// bytes the collector no longer chases). An op goes back once finish has
// answered it, unless a blocking caller or the event bus still holds it;
// the journal's per-batch cid map may still point at it, but only until
// the next commit clears the map, and nothing reads it before that.
var opPool = sync.Pool{New: func() any { return new(op) }}

// newOp returns a zeroed op.
func newOp() *op { return opPool.Get().(*op) }

// checkBackdate refuses a host-given created_at that is before the last
// message (seq last) of m's session, so that seqs stay in time order.
func (c *Core) checkBackdate(ctx context.Context, j *journalState, b *Batch, m *Message, last uint64) error {
	at, ok := j.lastAt[m.Session]
	for i := len(b.Messages) - 1; !ok && i >= 0; i-- { // seq last may be in this batch, not stored yet
		if b.Messages[i].Session == m.Session {
			at, ok = b.Messages[i].CreatedAt, true
		}
	}
	if !ok && last > 0 {
		ms, err := c.store.Messages(ctx, m.Session, last, last, 1, true)
		if err != nil {
			return c.clientError("reading session "+strconv.FormatUint(uint64(m.Session), 10)+"'s last message for created_at", err)
		}
		if len(ms) == 1 {
			at = ms[0].CreatedAt
		}
	}
	if j.lastAt == nil || len(j.lastAt) >= maxLastAt {
		j.lastAt = make(map[SessionID]int64)
	}
	j.lastAt[m.Session] = at
	if m.CreatedAt < at {
		return Errf(CodeBadRequest, "created_at "+strconv.FormatInt(m.CreatedAt, 10)+" is before the last message of session "+
			strconv.FormatUint(uint64(m.Session), 10)+" ("+strconv.FormatInt(at, 10)+"): import a session's messages oldest first")
	}
	return nil
}

// maxLastAt bounds journalState.lastAt; past it the map starts over (it is
// a cache of the store).
const maxLastAt = 4096

// putOp zeroes o (dropping its references) and pools it.
func putOp(o *op) {
	*o = op{}
	opPool.Put(o)
}

// MsgID is a message's global id: "<session>-<seq>".
func MsgID(s SessionID, seq uint64) string {
	b := make([]byte, 0, 24)
	b = strconv.AppendUint(b, uint64(s), 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, seq, 10)
	return string(b)
}
