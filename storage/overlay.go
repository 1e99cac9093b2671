package storage

import (
	"cmp"
	"slices"
	"sync"

	"chatd/chat"
)

// overlay holds the hot changes (Messages, Summaries, Reads, Records and
// DelRecords) that are in the WAL but not yet in bbolt. Reads merge it
// over bbolt. An overlay is written by Apply while active and only read
// once frozen; Bolt.mu guards both (see Bolt), except that each record
// kind's key order is completed lazily under its own lock (recKind).
type overlay struct {
	msgs  map[chat.SessionID][]chat.Message // each ascending by Seq, one per Seq
	sums  map[chat.SessionID]chat.Summary   // the first with the highest Seq
	reads map[readKey]uint64                // the highest read seq
	recs  map[string]*recKind               // by record kind: the last put or delete of each key
	nrecs int                               // keys in recs, over all kinds

	n    int    // messages held
	size int    // approximate bytes held
	buf  []byte // current chunk that message contents are copied into

	// hint is how many messages each session had in the previous overlay:
	// a session's slice starts at that capacity, so steady traffic fills
	// it without the copies of growing by append. Read-only.
	hint map[chat.SessionID]int32
}

type readKey struct {
	session chat.SessionID
	uid     string
}

// contentChunk is the size of the chunks message contents are copied into.
const contentChunk = 256 << 10

// newOverlay returns an empty overlay sized after prev (nil: unsized), the
// overlay it follows: under steady traffic each checkpoint interval looks
// like the last, and presized maps and slices skip the garbage of growing.
func newOverlay(prev *overlay) *overlay {
	if prev == nil {
		prev = &overlay{}
	}
	o := &overlay{
		msgs:  make(map[chat.SessionID][]chat.Message, len(prev.msgs)),
		sums:  make(map[chat.SessionID]chat.Summary, len(prev.sums)),
		reads: make(map[readKey]uint64, len(prev.reads)),
	}
	if len(prev.msgs) > 0 {
		o.hint = make(map[chat.SessionID]int32, len(prev.msgs))
		for id, ms := range prev.msgs {
			o.hint[id] = int32(min(len(ms), 1<<20))
		}
	}
	return o
}

func (o *overlay) empty() bool {
	return len(o.msgs)+len(o.sums)+len(o.reads)+len(o.recs) == 0
}

// recKind is one record kind's changes in an overlay: per key the value of
// its last put, or a tombstone for a delete (which must hide bbolt's value
// until the checkpoint deletes it there).
//
// keys lists every key of m in ascending order once pending (keys added
// since, unsorted) is merged into it. Apply only appends to pending (under
// Bolt.mu's write lock); a reader (under Bolt.mu's read lock, so possibly
// alongside other readers) or the checkpoint merges pending under mu, the
// leaf lock of this kind: sorted. A merge either appends past the end of
// keys or builds a new slice, so a slice that sorted returned never
// changes under its holder.
type recKind struct {
	m       map[string]recEntry
	mu      sync.Mutex
	keys    []string
	pending []string
}

// recEntry is a record's value in an overlay, or its deletion.
type recEntry struct {
	val []byte
	del bool
}

// put records the put (del false) or delete of key; the later of two
// changes to one key wins.
func (rk *recKind) put(key []byte, e recEntry) (added bool) {
	if _, ok := rk.m[string(key)]; ok {
		rk.m[string(key)] = e
		return false
	}
	k := string(key)
	rk.m[k] = e
	rk.pending = append(rk.pending, k)
	return true
}

// sorted returns the kind's keys in ascending order. The slice must not
// be modified; it stays valid while the caller holds Bolt.mu (any mode)
// or, for a frozen overlay, until the overlay is dropped.
func (rk *recKind) sorted() []string {
	rk.mu.Lock()
	defer rk.mu.Unlock()
	if len(rk.pending) == 0 {
		return rk.keys
	}
	p := rk.pending
	slices.Sort(p)
	if n := len(rk.keys); n == 0 || rk.keys[n-1] < p[0] {
		// Keys that grow (event ids, sequence numbers): append past the
		// end, which no holder of the old slice can see.
		rk.keys = append(rk.keys, p...)
	} else {
		merged := make([]string, 0, len(rk.keys)+len(p))
		i, j := 0, 0
		for i < len(rk.keys) && j < len(p) {
			if rk.keys[i] < p[j] {
				merged = append(merged, rk.keys[i])
				i++
			} else {
				merged = append(merged, p[j])
				j++
			}
		}
		merged = append(merged, rk.keys[i:]...)
		rk.keys = append(merged, p[j:]...)
	}
	rk.pending = nil
	return rk.keys
}

// record returns the overlay's change to (kind, key), if it has one.
func (o *overlay) record(kind string, key []byte) (recEntry, bool) {
	rk := o.recs[kind]
	if rk == nil {
		return recEntry{}, false
	}
	e, ok := rk.m[string(key)]
	return e, ok
}

// putRecord adds a put or delete of (kind, key) to the overlay.
func (o *overlay) putRecord(kind string, key, val []byte, del bool) {
	rk := o.recs[kind]
	if rk == nil {
		if o.recs == nil {
			o.recs = make(map[string]*recKind)
		}
		rk = &recKind{m: make(map[string]recEntry)}
		o.recs[kind] = rk
	}
	e := recEntry{del: del}
	if !del {
		e.val = o.copyBytes(val)
	}
	if rk.put(key, e) {
		o.nrecs++
	}
	o.size += 64 + len(kind) + len(key) + len(val)
}

// recordOp is one record change of a checkpoint.
type recordOp struct {
	kind, key string
	recEntry
}

// recordOps returns the overlay's record changes in key order per kind,
// kinds in name order: what the checkpoint writes. The caller holds
// ckptMu (frozen is not written any more).
func (o *overlay) recordOps() []recordOp {
	if o.nrecs == 0 {
		return nil
	}
	kinds := make([]string, 0, len(o.recs))
	for k := range o.recs {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	ops := make([]recordOp, 0, o.nrecs)
	for _, kind := range kinds {
		rk := o.recs[kind]
		for _, k := range rk.sorted() {
			ops = append(ops, recordOp{kind: kind, key: k, recEntry: rk.m[k]})
		}
	}
	return ops
}

// add applies the hot part of b, in the order chat.Store documents.
func (o *overlay) add(b *chat.Batch) {
	for i := range b.Messages {
		m := b.Messages[i]
		m.Content = o.copyBytes(m.Content)
		o.putMsg(m)
		o.size += 64 + len(m.App) + len(m.From) + len(m.Type) + len(m.CID) + len(m.Content)
	}
	for i := range b.Summaries {
		sm := &b.Summaries[i]
		if cur, ok := o.sums[sm.Session]; !ok || sm.Seq > cur.Seq {
			o.sums[sm.Session] = *sm
			o.size += 64 + len(sm.From) + len(sm.Type) + len(sm.Preview)
		}
	}
	for i := range b.Reads {
		r := &b.Reads[i]
		k := readKey{session: r.Session, uid: r.UID}
		if cur, ok := o.reads[k]; !ok || r.Seq > cur {
			o.reads[k] = r.Seq
			o.size += 48 + len(r.UID)
		}
	}
	// Puts, then deletes: a key put and deleted in one batch ends deleted.
	for i := range b.Records {
		r := &b.Records[i]
		o.putRecord(r.Kind, r.Key, r.Value, false)
	}
	for i := range b.DelRecords {
		k := &b.DelRecords[i]
		o.putRecord(k.Kind, k.Key, nil, true)
	}
}

// copyBytes copies p into the overlay's chunks; the copy is capped, so no
// append through it reaches a neighbour. Empty stays nil, as bbolt reads it.
func (o *overlay) copyBytes(p []byte) []byte {
	if len(p) == 0 {
		return nil
	}
	if cap(o.buf)-len(o.buf) < len(p) {
		o.buf = make([]byte, 0, max(contentChunk, len(p)))
	}
	start := len(o.buf)
	o.buf = append(o.buf, p...)
	return o.buf[start:len(o.buf):len(o.buf)]
}

func cmpSeq(m chat.Message, seq uint64) int { return cmp.Compare(m.Seq, seq) }

// putMsg stores m; a later put of the same Seq replaces the earlier one.
func (o *overlay) putMsg(m chat.Message) {
	s := o.msgs[m.Session]
	if s == nil {
		if h := o.hint[m.Session]; h > 1 {
			s = make([]chat.Message, 0, h)
		}
	}
	if n := len(s); n == 0 || s[n-1].Seq < m.Seq {
		s = append(s, m)
		o.n++
	} else if i, found := slices.BinarySearchFunc(s, m.Seq, cmpSeq); found {
		s[i] = m
	} else {
		s = slices.Insert(s, i, m)
		o.n++
	}
	o.msgs[m.Session] = s
}

// rangeOf returns the held messages of id with lo <= seq <= hi, ascending,
// at most limit (> 0) of them from the low end, or the high end when
// newest. The slice aliases the overlay: read it under Bolt.mu only.
func (o *overlay) rangeOf(id chat.SessionID, lo, hi uint64, limit int, newest bool) []chat.Message {
	s := o.msgs[id]
	if len(s) == 0 {
		return nil
	}
	i, _ := slices.BinarySearchFunc(s, lo, cmpSeq)
	j, found := slices.BinarySearchFunc(s, hi, cmpSeq)
	if found {
		j++
	}
	if i >= j {
		return nil
	}
	s = s[i:j]
	if limit > 0 && len(s) > limit {
		if newest {
			s = s[len(s)-limit:]
		} else {
			s = s[:limit]
		}
	}
	return s
}

// batch returns the overlay's changes as one batch for writing to bbolt:
// messages in key order (session, seq), the newest summary per session,
// the highest read per member.
//
// The messages are not copied into the batch: msgRuns lists them as one
// ascending run per session, in key order, and nextMsgs hands them out in
// chunks.
func (o *overlay) batch() (b *chat.Batch, msgRuns [][]chat.Message) {
	b = &chat.Batch{
		Summaries: make([]chat.Summary, 0, len(o.sums)),
		Reads:     make([]chat.ReadMark, 0, len(o.reads)),
	}
	ids := make([]chat.SessionID, 0, len(o.msgs))
	for id := range o.msgs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	msgRuns = make([][]chat.Message, 0, len(ids))
	for _, id := range ids {
		msgRuns = append(msgRuns, o.msgs[id])
	}
	for _, sm := range o.sums {
		b.Summaries = append(b.Summaries, sm)
	}
	slices.SortFunc(b.Summaries, func(x, y chat.Summary) int { return cmp.Compare(x.Session, y.Session) })
	for k, seq := range o.reads {
		b.Reads = append(b.Reads, chat.ReadMark{Session: k.session, UID: k.uid, Seq: seq})
	}
	slices.SortFunc(b.Reads, func(x, y chat.ReadMark) int {
		if c := cmp.Compare(x.Session, y.Session); c != 0 {
			return c
		}
		return cmp.Compare(x.UID, y.UID)
	})
	return b, msgRuns
}

// nextMsgs moves up to n messages from the front of runs into dst (reset
// first) and returns dst and the runs left: the checkpoint's chunks, in key
// order, through one reused buffer.
func nextMsgs(dst []chat.Message, runs [][]chat.Message, n int) ([]chat.Message, [][]chat.Message) {
	dst = dst[:0]
	for len(runs) > 0 && len(dst) < n {
		k := min(n-len(dst), len(runs[0]))
		dst = append(dst, runs[0][:k]...)
		if runs[0] = runs[0][k:]; len(runs[0]) == 0 {
			runs = runs[1:]
		}
	}
	return dst, runs
}

// mergeMsgs merges two ascending pages; on equal Seq the one from over
// wins. It returns a new slice.
func mergeMsgs(base, over []chat.Message) []chat.Message {
	out := make([]chat.Message, 0, len(base)+len(over))
	i, j := 0, 0
	for i < len(base) && j < len(over) {
		switch {
		case base[i].Seq < over[j].Seq:
			out = append(out, base[i])
			i++
		case base[i].Seq > over[j].Seq:
			out = append(out, over[j])
			j++
		default:
			out = append(out, over[j])
			i++
			j++
		}
	}
	out = append(out, base[i:]...)
	return append(out, over[j:]...)
}
