// Package storage is chatd's durable store: Bolt implements chat.Store on
// one bbolt file (data/chat.db by default).
//
// # Transactions
//
// Every write goes through Apply, which the core's journal goroutine calls
// with everything it has gathered (group commit): one bbolt write
// transaction, so one fsync, per batch. Reads each run in their own bbolt
// read transaction, copy their values out before it ends, and never wait
// for Apply. Backup streams a read transaction's snapshot, so it is a
// consistent copy taken while the server runs.
//
// # Layout (schema 1)
//
// Notation: u64 is 8-byte big-endian, so numeric keys scan in numeric
// order; str is a uvarint length followed by the bytes. Length-prefixed
// strings make composite keys prefix-free: any byte may appear in an id,
// and str(app) str(uid) is a prefix of exactly that user's keys.
//
//	bucket          key                              value
//	meta            "schema"                         u32 schema version (1)
//	apps            app id (raw)                     App record
//	users           str(app) str(uid)                User record
//	tokens          sha-256 (32 bytes)               Token record
//	tokens_by_user  str(app) str(uid) sha-256        empty
//	sessions        u64(id)                          Session record
//	pairs           str(app) str(lo) str(hi)         u64(session id); private sessions, lo <= hi
//	members         u64(session) uid (raw)           Member record
//	user_sessions   str(app) str(uid) u64(session)   empty
//	msgs            u64(session) u64(seq)            Message record
//	cids            str(app) str(from) str(cid)      u64(session) u64(seq)
//
// Records are binary; each starts with a version byte (1), so a later
// encoding can be told apart and migrated. Fields covered by the key are
// not repeated in the value.
//
//	App      0x01 str(ID) str(Name) str(Secret) varint(CreatedAt)
//	User     0x01 str(App) str(UID) str(Nickname) str(Avatar) str(Extra) varint(CreatedAt) varint(UpdatedAt)
//	Token    0x01 str(App) str(UID) varint(CreatedAt) varint(ExpiresAt)
//	Session  0x01 str(App) u8(Kind) str(Name) str(Avatar) str(Owner) str(Pair[0]) str(Pair[1])
//	              varint(CreatedAt) uvarint(LastSeq) varint(LastAt) str(LastFrom) str(LastType) str(LastPreview)
//	Member   0x01 u8(Role) uvarint(ReadSeq) varint(JoinedAt)
//	Message  0x01 str(App) str(From) str(Type) str(CID) varint(CreatedAt) str(Content)
//
// A Session's Last* fields come last so that a Summary rewrites the record
// by splicing the tail, without decoding it; a ReadMark likewise rewrites a
// Member. A Message's four strings sit together so a decoder makes one Go
// string for all of them.
//
// Open writes meta/schema into a new file and refuses a file whose schema
// is newer than SchemaVersion (ErrNewerSchema) before writing anything to
// it; a file with buckets but no meta is not a chatd file and is refused.
// Migrations from older schemas belong in initSchema.
//
// # Why one msgs bucket
//
// Messages live in one bucket keyed u64(session) u64(seq), not in one
// nested bucket per session. Measured on the 2-core CI box (1,000 80-byte
// messages per fsync'd commit, 20 stored per session beforehand):
//
//	sessions per commit      1       10      100     1,000
//	nested, fill 1.0        ~0.9M   ~0.55M  ~0.25M  ~35k msgs/s
//	flat,   fill 0.9        ~1.0M   ~0.5M   ~0.2M   ~65k msgs/s
//	flat,   fill 1.0        ~1.0M   ~0.2M   ~0.1M   ~58k msgs/s
//
// The two layouts tie while few sessions share a commit; with many (the
// 1:1 case) the flat bucket dirties fewer pages, and it packs small
// sessions densely where a nested bucket costs a page per session once it
// outgrows inline storage (about 1 KiB). A session's seqs are contiguous in
// the flat key space, so a history page is one cursor seek plus a short
// scan either way. FillPercent is 0.9 for msgs, sessions and members (keys
// mostly grow at the end of a range); 1.0 is worse for msgs because new
// keys land in the middle of the tree, at the end of each session's range.
//
// What a commit costs is mostly the number of distinct pages it dirties
// (bbolt writes each dirty page with its own pwrite, then fsyncs): a
// commit that touches 1,000 sessions costs ~15–20 ms whatever the layout.
//
// # bbolt options
//
// As etcd does: the hashmap freelist (stays fast when the file is
// fragmented) and NoFreelistSync (the freelist is not written on every
// commit; Open rebuilds it by scanning the file, which grows Open's time
// with the file's size).
package storage
