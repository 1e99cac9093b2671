// Package storage is chatd's durable store: Bolt implements chat.Store on
// one bbolt file (data/chat.db by default).
//
// # Transactions and the write-ahead log
//
// Every write goes through Apply, which the core's journal goroutine calls
// with everything it has gathered (group commit). Committing a 1:1 chat's
// batch straight to bbolt is slow: each message of a different session
// dirties its own msgs leaf and branch pages, and
// bbolt rewrites every dirty page and fsyncs twice per commit (~20 ms for
// 1,000 messages over 1,000 sessions on a grown file). So the hot part of
// the traffic goes through a write-ahead log (WAL) first:
//
//   - A batch of only Messages, Summaries, Reads, Records and DelRecords
//     is encoded as one record, appended to the WAL file (chat.db-wal
//     next to the data file) and synced: one sequential write and one
//     fsync per group commit. Then its changes go into the active
//     overlay, in memory, and Apply returns. The overlay holds, since the
//     last checkpoint: each session's messages by seq, its newest
//     summary, the highest read seq per member, and per record kind the
//     last change of each key: its value, or a tombstone for a delete (a
//     later change replaces an earlier one; within a batch the puts come
//     before the deletes, so a key put and deleted in one batch ends
//     deleted). Domain records ride here because some are written per
//     message (a webhook outbox event per message; customer-service
//     routing under message load): as direct batches each cost a
//     checkpoint and a bbolt commit, and every message sharing the group
//     commit waited for it. Invalid record kinds or keys fail the batch
//     before anything is written.
//   - Any other batch (Apps, Users, Tokens, DelTokens, DelUserTokens,
//     DelUsers, Sessions, Members, DelMembers, Restrictions, DelRestrictions: rare;
//     it may carry records too) first runs a checkpoint, then
//     commits the whole batch in one bbolt write transaction, as before
//     the WAL. Apply holds its locks throughout, so it is ordered with the
//     hot batches on either side. Sessions and members are therefore
//     always in bbolt, never only in an overlay.
//   - A checkpoint (a goroutine started by Open: every
//     Options.CheckpointInterval, 1 s by default and 5 s in chatd, or
//     early once the overlay holds Options.CheckpointMessages messages or
//     ~64 MiB) freezes the active overlay (hot Applies go on into a fresh
//     one), renaming the WAL to chat.db-wal.1 and making the spare
//     chat.db-wal.2 (or a new file) the active chat.db-wal (the folder is
//     fsynced before any record goes into it), writes the frozen overlay
//     into bbolt in key order (each dirty page is rewritten once per
//     checkpoint, not once per commit; records last, kind by kind, each
//     kind's puts and deletes in key order), then drops the frozen overlay and
//     retires chat.db-wal.1 as the next spare. The bbolt commits run
//     without the readers' lock, in transactions of at most 256 puts
//     (1,024 when behind): one big transaction held a P for tens of
//     milliseconds and the journal and event loops queued behind it, and
//     a WAL sync queued behind a transaction's pages waits for all of
//     them. The background checkpoint also yields every 128 puts and
//     rests after each transaction as long as it took (at most 20 ms),
//     unless it is behind (the next overlay half full) or someone waits
//     for it (see Bolt.relaxed).
//   - Growing and recycling: the checkpointer keeps the active file's
//     real blocks ahead of its records (at least 1 MiB past them, up to
//     twice what they use, at most 64 MiB), writing zeroes 128 KiB at a
//     time, each step synced and followed by a rest as long as it took
//     (wal.grow; Apply asks for it, and a checkpoint grows a step between
//     its transactions). A retired file is stamped with a new generation
//     (synced), which kills every record in it, and kept at its size as
//     the spare. Records are written in place over allocated blocks and
//     made durable with fdatasync, which then need not commit file-size
//     metadata. One 600-byte record + sync
//     (go test -run x -bench WALSync ./storage), quiet box: growing file
//     p50 151-154 µs / p99 236-239 µs, in place p50 92-101 µs / p99
//     144-179 µs; under load the growing file's tail was far longer (p99
//     1.76 ms against 0.23 ms, the same loop run while CI ran).
//   - Reads merge: Messages = bbolt's page with the frozen, then the active
//     overlay's over it (an overlay message replaces bbolt's of the same
//     seq; each source yields at most limit messages from the requested
//     end, so the merged end is exact); Session applies an overlay summary
//     whose seq is above the stored LastSeq; Member and Members raise
//     ReadSeq to the overlays' marks (a member missing from bbolt is still
//     missing); Record takes the active overlay's change to the key, else
//     the frozen one's, else bbolt's (a tombstone reads as not found);
//     ScanRecords walks bbolt's cursor and both overlays' sorted keys of
//     the kind together, in the scan's direction, within its prefix and
//     after bound (on equal keys the active overlay wins over the frozen
//     one, either over bbolt; tombstones hide keys) until limit. An
//     overlay's keys of a kind are sorted lazily: Apply appends new keys
//     unsorted, and the first scan after merges them in (under the kind's
//     own lock, as scans run side by side under the read lock).
//     Other reads only use bbolt. A reader holds Bolt.mu's read lock
//     across its bbolt read transaction and its overlay lookups, and the
//     checkpoint drops the frozen overlay under the write lock after its
//     commit, so a reader sees the frozen changes in memory or in bbolt,
//     never in neither.
//   - Close stops the checkpointer, checkpoints everything, deletes the
//     WAL and closes bbolt. Backup checkpoints first, so a backup holds
//     every Apply that returned before it was called.
//
// A summary or read mark of a session or member whose bbolt record does
// not decode is skipped by the checkpoint (reads of that record fail with
// ErrCorrupt anyway) rather than failing every later checkpoint.
//
// If a WAL write or fsync fails, Apply fails and the next record is
// written at the same offset (a torn record is never read: see below);
// after a failed fsync the whole record is rewritten, never just synced
// again (see wal.append). A full disk (ENOSPC, EDQUOT) therefore fails
// only the Applies made while it lasts, each with an error wrapping
// chat.ErrDiskFull, which the core answers `unavailable` "disk full";
// checkpoints that fail for lack of space are retried by the next one;
// a WAL rotation makes the new file before renaming anything and undoes a
// half-done switch (wal.rotate), so only a rename that cannot be undone
// leaves the log refusing writes until a restart. DiskFull reports the
// state for metrics. A bbolt commit that fails for lack of space is
// retried (its pages are written afresh); one that fails otherwise stops
// every write until a restart (Bolt.update explains why).
//
// # Retention
//
// PruneMessages deletes an app's old messages from bbolt in small
// transactions (the core's retention pass); the first call of a pass
// checkpoints, so messages still in the WAL are deleted too and not
// written back by a later checkpoint. Session records keep LastSeq and
// the summary, so seqs are never reused.
//
// # WAL format and recovery
//
// A WAL file is a header, then a sequence of records:
//
//	header: "chatdWAL" u64(generation)
//	u32 length of payload (big-endian, > 0)
//	u32 CRC-32C (Castagnoli) of the 8 generation bytes, the 4 length
//	    bytes, then the payload
//	payload:
//	  uvarint(n) n × { u64(session) uvarint(seq) uvarint(len) Message record }
//	  uvarint(n) n × { u64(session) uvarint(seq) varint(At) str(From) str(Type) str(Preview) }
//	  uvarint(n) n × { u64(session) str(uid) uvarint(seq) }
//	  optional, only when the batch has records:
//	  uvarint(n) n × { str(kind) str(key) str(value) }
//	  uvarint(n) n × { str(kind) str(key) }
//
// The parts are the batch's Messages, Summaries, Reads, then Records and
// DelRecords in order; the Message record is the msgs bucket's value (so
// it carries the CID). A batch without records is encoded exactly as
// before records rode the WAL, so logs written by an older chatd replay
// unchanged; an older chatd refuses (ErrCorrupt) a log whose records
// carry a records section, rather than drop them, so after a crash
// restart the same or a newer build, or let it checkpoint first (a clean
// Close leaves no log).
// A file that does not start with "chatdWAL" is of the first format
// (written by chatd before recycling): no header, and the CRC covers only
// the length and the payload; Open still replays it.
//
// Open, before serving, reads chat.db-wal.1 (left by a crash during a
// checkpoint) and then chat.db-wal, record by record. It stops at the
// first record that is incomplete, longer than the file, empty, or whose
// CRC does not match: that tail was being written when the process
// stopped, its fsync never returned, so its Apply never did either. (The
// CRC covers the length, so a tail of zeroes is never a record, and the
// generation, so a record left from the file's earlier use is not one.) A record
// whose CRC matches but does not decode is corruption, and Open fails
// with ErrCorrupt rather than drop acknowledged writes. Every record read
// goes into an overlay, which is written to bbolt as a checkpoint writes
// one (transactions of at most 1,024 puts; the replayed messages still
// need about the log's size of free space, and a replay that runs out
// fails with chat.ErrDiskFull saying how much, keeping the log); then
// chat.db-wal.1 and any spare are deleted, chat.db-wal is truncated,
// stamped with generation 1 and synced, and the folder is fsynced. Replaying a record that a checkpoint already wrote
// (a crash after its commit, before deleting chat.db-wal.1) changes
// nothing: message puts rewrite the same values, summaries and read marks
// only ever rise, and record puts and deletes are replayed record by
// record, in the order they were applied (never gathered into one batch,
// which would put every put before every delete), before the active
// file's later ones, so the last change of each key wins again. No direct
// batch can lie between the two:
// it runs only after the checkpoint has durably stamped the frozen file
// with a new generation.
//
// # Layout (schema 2)
//
// Notation: u64 is 8-byte big-endian, so numeric keys scan in numeric
// order; str is a uvarint length followed by the bytes. Length-prefixed
// strings make composite keys prefix-free: any byte may appear in an id,
// and str(app) str(uid) is a prefix of exactly that user's keys.
//
//	bucket          key                              value
//	meta            "schema"                         u32 schema version (2)
//	apps            app id (raw)                     App record
//	users           str(app) str(uid)                User record
//	tokens          sha-256 (32 bytes)               Token record
//	tokens_by_user  str(app) str(uid) sha-256        empty
//	sessions        u64(id)                          Session record
//	pairs           str(app) str(lo) str(hi)         u64(session id); private sessions, lo <= hi
//	members         u64(session) uid (raw)           Member record
//	user_sessions   str(app) str(uid) u64(session)   empty
//	msgs            u64(session) u64(seq)            Message record
//	restrictions    str(app) str(uid) u8(kind)       Restriction record (bans, mutes; restrictions.go)
//	records/<kind>  the domain's key (raw)           the domain's value (raw)
//
// records holds one nested bucket per record kind (chat/records.go):
// customer-service, consultation, contact and moderation state, each
// domain's own encoding. A hot batch's records go through the WAL and the
// overlays like messages and reach the bucket at the next checkpoint; a
// direct batch's records go straight into it. Adding the bucket
// to an older file needs no schema change: Open creates missing buckets,
// and an older chatd ignores it.
//
// Schema 1 also had cids, str(app) str(from) str(cid) → u64(session)
// u64(seq): a store-wide index of client message ids. Its keys are random,
// so every checkpoint rewrote leaves across the whole index (on a grown
// file most of the checkpoint's pages and garbage). Open drops it when it
// upgrades a schema-1 file; the journal now finds a retried cid among the
// sender's newest sends in the session (chat/cidring.go), which carry their cid.
//
// Records are binary; each starts with a version byte (1), so a later
// encoding can be told apart and migrated. Fields covered by the key are
// not repeated in the value.
//
//	App      0x01 str(ID) str(Name) str(Secret) varint(CreatedAt)
//	         0x02 str(ID) str(Name) str(Secret) varint(CreatedAt) varint(RetentionDays)
//	User     0x01 str(App) str(UID) str(Nickname) str(Avatar) str(Extra) varint(CreatedAt) varint(UpdatedAt)
//	Token    0x01 str(App) str(UID) varint(CreatedAt) varint(ExpiresAt)
//	Session  0x01 str(App) u8(Kind) str(Name) str(Avatar) str(Owner) str(Pair[0]) str(Pair[1])
//	              varint(CreatedAt) uvarint(LastSeq) varint(LastAt) str(LastFrom) str(LastType) str(LastPreview)
//	Member   0x01 u8(Role) uvarint(ReadSeq) varint(JoinedAt)
//	Message  0x01 str(App) str(From) str(Type) str(CID) varint(CreatedAt) str(Content)
//
// An App with a RetentionDays of its own is written as version 2; one
// without is still written as version 1 (RetentionDays 0), the layout
// older builds read. A Session's Last* fields come last so that a Summary rewrites the record
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
// That is why hot batches go through the WAL and reach bbolt only in
// checkpoints. BenchmarkApplyGrown (200,000 messages with cids stored
// beforehand, fsync on, 2-core box shared with other jobs):
//
//	batch                          bbolt per commit    WAL
//	100 msgs over 100 sessions     3.6–12.6 ms         0.26–0.40 ms
//	1,000 msgs over 1,000 sessions 21–29 ms            0.75–2.0 ms
//
// A checkpoint of 200,000 such messages takes ~1 s (BenchmarkCheckpoint).
//
// # bbolt options
//
// As etcd does: the hashmap freelist (stays fast when the file is
// fragmented) and NoFreelistSync (the freelist is not written on every
// commit; Open rebuilds it by scanning the file, which grows Open's time
// with the file's size).
package storage
