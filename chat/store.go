package chat

import (
	"context"
	"errors"
)

// ErrNotFound is returned by a Store when a record does not exist.
var ErrNotFound = errors.New("chat: not found")

// ErrDiskFull is wrapped by a Store's errors when a write failed because
// the disk (or the user's quota) is full. Nothing of that write is
// stored; the core answers it `unavailable` ("disk full: …") and the
// same write may succeed once space is freed.
var ErrDiskFull = errors.New("disk full")

// Store is what the core needs from durable storage. storage.Bolt implements
// it on bbolt; chat/memstore implements it in memory for core tests; both pass
// chat/storetest.
//
// Reads never wait for writes. Every write goes through Apply, which the core
// calls from its single journal goroutine (group commit): one transaction and
// one fsync for everything in the batch.
//
// Returned values are the caller's: a Store copies out of its transaction.
type Store interface {
	// Apply commits every change in b in one durable transaction, in this
	// order: Apps, Users, Tokens, DelTokens, DelUserTokens, Sessions,
	// Members, DelMembers, Messages, Summaries, Reads, Records, DelRecords.
	// All or nothing.
	//
	//  - Apps, Users, Sessions, Members: put (create or replace). Putting a
	//    Session keeps the stored Last* fields when the stored LastSeq is
	//    higher, so a put made from an older read never rolls them back.
	//    Putting a Session of KindPrivate indexes its Pair so that
	//    PrivateSession finds it. Putting a Member indexes the session under
	//    the user (UserSessions); deleting it removes that entry.
	//  - Tokens: put, indexed under the user; DelTokens deletes by hash;
	//    DelUserTokens deletes every token of a user.
	//  - Messages: put under (Session, Seq), CID and all. (The journal
	//    finds retried CIDs among each sender's recent messages itself,
	//    reading a session's newest messages when it must; see
	//    cidring.go. There is no store-wide CID index: a random-keyed
	//    index made every checkpoint rewrite pages all over the tree.)
	//  - Summaries: set the session's Last* fields when Seq > LastSeq.
	//  - Reads: raise the member's ReadSeq (never lower it; a missing member
	//    is ignored).
	//  - Records: put (create or replace) each value under (Kind, Key);
	//    then DelRecords: delete (a missing key is not an error). A record
	//    put and deleted in one batch ends deleted.
	//  - DelUsers (applied right after Users): delete the user record (a
	//    missing one is not an error); tokens, memberships and records
	//    are the caller's to delete in the same batch.
	//  - Restrictions: put by (App, UID, Kind); DelRestrictions: delete by
	//    that key (a missing one is ignored). Applied after DelRecords.
	Apply(ctx context.Context, b *Batch) error

	App(ctx context.Context, id string) (App, error)
	Apps(ctx context.Context) ([]App, error)
	User(ctx context.Context, app, uid string) (User, error)
	// Users lists up to limit users of app that come after the uid `after`
	// ("": from the first), in an order of the Store's that is the same on
	// every call, so that `after` = the last uid of a page continues it.
	// limit <= 0 means no limit.
	Users(ctx context.Context, app, after string, limit int) ([]User, error)
	Token(ctx context.Context, hash [32]byte) (Token, error)
	Session(ctx context.Context, id SessionID) (Session, error)
	// PrivateSession finds the private session of a pair, in either order.
	PrivateSession(ctx context.Context, app, a, b string) (SessionID, error)
	Members(ctx context.Context, id SessionID) ([]Member, error)
	Member(ctx context.Context, id SessionID, uid string) (Member, error)
	// UserSessions lists the sessions a user is a member of, ascending.
	UserSessions(ctx context.Context, app, uid string) ([]SessionID, error)
	// Messages returns up to limit messages of a session with lo <= seq <= hi,
	// ascending by seq; when newest is true it takes the newest of that range
	// (still returned ascending). limit <= 0 means no limit.
	Messages(ctx context.Context, id SessionID, lo, hi uint64, limit int, newest bool) ([]Message, error)
	// MaxSessionID is the largest session id stored, 0 when none.
	MaxSessionID(ctx context.Context) (SessionID, error)
	// PruneMessages deletes messages of app's sessions whose CreatedAt is
	// before `before` (unix ms), in one durable transaction of at most max
	// deletions (max <= 0: no limit). Sessions are scanned by id from
	// `from` up; in each, messages go oldest first and the scan stops at
	// the first one that is not older (seqs are handed out in time
	// order). It returns how many it deleted and the session to continue
	// from in the next call (0: every session was scanned). Sessions,
	// their LastSeq and summary, members and read marks are kept, so seqs
	// are never reused: history just starts later. A call with from == 0
	// begins a pass; everything Apply returned for before it is included.
	PruneMessages(ctx context.Context, app string, before int64, from SessionID, max int) (deleted int, next SessionID, err error)

	// Record returns the value stored under (kind, key) by Batch.Records,
	// or ErrNotFound. See records.go.
	Record(ctx context.Context, kind string, key []byte) ([]byte, error)
	// ScanRecords returns up to limit records of kind whose key starts
	// with prefix, ascending by key from the first key after `after` (nil:
	// from the first). With reverse it walks descending instead, from the
	// last key before `after` (nil: from the last). limit <= 0 means no
	// limit.
	ScanRecords(ctx context.Context, kind string, prefix, after []byte, limit int, reverse bool) ([]Record, error)
	// Restrictions lists every stored ban and mute, of every app, in no
	// particular order (the core loads them once, at start).
	Restrictions(ctx context.Context) ([]Restriction, error)
	// CountUsers is the number of users of app; CountGroups the number of
	// its sessions of KindGroup. They may scan: the core calls each once
	// per app that has a limit, then counts itself.
	CountUsers(ctx context.Context, app string) (int, error)
	CountGroups(ctx context.Context, app string) (int, error)
	Close() error
}

// Batch is one group commit. The zero Batch is empty.
type Batch struct {
	Apps          []App
	Users         []User
	Tokens        []Token
	DelTokens     [][32]byte
	DelUserTokens []UserKey
	Sessions      []Session
	Members       []Member
	DelMembers    []MemberKey
	Messages      []Message
	Summaries     []Summary
	Reads         []ReadMark
	Records       []Record    // put, after Reads (records.go)
	DelRecords    []RecordKey // delete, after Records; a missing key is no error
	DelUsers      []UserKey   // delete, right after Users

	Restrictions    []Restriction    // bans and mutes (moderation.go)
	DelRestrictions []RestrictionKey // lifted bans and mutes

	// Fence, when set, makes a SharedStore commit the batch only while
	// Fence.Holder holds the lease Fence.Lease (SharedStore.TryLease),
	// checked in the commit's own transaction, which keeps the lease from
	// passing until it ends; else nothing is written and the error wraps
	// ErrFenced. The domains' owner fences its writes (owner.go). Stores
	// that are not shared ignore it.
	Fence *Fence
}

// Fence names a lease and its holder (Batch.Fence).
type Fence struct {
	Lease, Holder string
}

// ErrFenced: a fenced batch (Batch.Fence) was refused because the lease
// is no longer its holder's.
var ErrFenced = errors.New("chat: the write's lease is no longer its holder's")

// Empty reports whether the batch changes nothing.
func (b *Batch) Empty() bool {
	return len(b.Apps)+len(b.Users)+len(b.Tokens)+len(b.DelTokens)+len(b.DelUserTokens)+
		len(b.Sessions)+len(b.Members)+len(b.DelMembers)+len(b.Messages)+len(b.Summaries)+len(b.Reads)+
		len(b.Records)+len(b.DelRecords)+len(b.Restrictions)+len(b.DelRestrictions)+len(b.DelUsers) == 0
}

// Reset empties the batch, keeping its slices' memory.
func (b *Batch) Reset() {
	*b = Batch{
		Apps: b.Apps[:0], Users: b.Users[:0], Tokens: b.Tokens[:0], DelTokens: b.DelTokens[:0],
		DelUserTokens: b.DelUserTokens[:0], Sessions: b.Sessions[:0], Members: b.Members[:0],
		DelMembers: b.DelMembers[:0], Messages: b.Messages[:0], Summaries: b.Summaries[:0], Reads: b.Reads[:0],
		Records: b.Records[:0], DelRecords: b.DelRecords[:0],
		Restrictions: b.Restrictions[:0], DelRestrictions: b.DelRestrictions[:0], DelUsers: b.DelUsers[:0],
	}
}
