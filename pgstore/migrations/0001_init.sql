-- chatd's first schema. Every string of chat's model is bytea: ids and
-- names may hold any byte (NUL and invalid UTF-8 included), which text
-- refuses; bytea also sorts bytewise like Go strings. Read one with
-- convert_from(col, 'UTF8'). Session ids are uint64 stored in bigint
-- with the same bits (ids past 2^63 read as negative); seqs are bigint.

CREATE TABLE apps (
	id             bytea  PRIMARY KEY,
	name           bytea  NOT NULL,
	secret         bytea  NOT NULL,
	created_at     bigint NOT NULL, -- unix ms, like every *_at below
	retention_days bigint NOT NULL,
	max_users      bigint NOT NULL,
	max_groups     bigint NOT NULL
);

CREATE TABLE users (
	app        bytea  NOT NULL,
	uid        bytea  NOT NULL,
	nickname   bytea  NOT NULL,
	avatar     bytea  NOT NULL,
	extra      bytea,           -- the host's JSON, as given
	created_at bigint NOT NULL,
	updated_at bigint NOT NULL,
	PRIMARY KEY (app, uid)
);

CREATE TABLE tokens (
	hash       bytea  PRIMARY KEY, -- SHA-256 of the token
	app        bytea  NOT NULL,
	uid        bytea  NOT NULL,
	created_at bigint NOT NULL,
	expires_at bigint NOT NULL
);
CREATE INDEX tokens_user ON tokens (app, uid);

CREATE TABLE sessions (
	id           bigint   PRIMARY KEY,
	app          bytea    NOT NULL,
	kind         smallint NOT NULL, -- chat.Kind: 1 private, 2 group, 3 system, …
	name         bytea    NOT NULL,
	avatar       bytea    NOT NULL,
	owner        bytea    NOT NULL,
	pair0        bytea    NOT NULL, -- private: the two uids
	pair1        bytea    NOT NULL,
	created_at   bigint   NOT NULL,
	last_seq     bigint   NOT NULL, -- the summary of the newest message
	last_at      bigint   NOT NULL,
	last_from    bytea    NOT NULL,
	last_type    bytea    NOT NULL,
	last_preview bytea    NOT NULL
);
CREATE INDEX sessions_app ON sessions (app, id);
-- PrivateSession finds a pair in either order.
CREATE INDEX sessions_pair ON sessions (app, least(pair0, pair1), greatest(pair0, pair1)) WHERE kind = 1;

CREATE TABLE members (
	session_id bigint   NOT NULL REFERENCES sessions (id),
	uid        bytea    NOT NULL,
	app        bytea    NOT NULL, -- the session's, for UserSessions
	role       smallint NOT NULL,
	read_seq   bigint   NOT NULL,
	joined_at  bigint   NOT NULL,
	PRIMARY KEY (session_id, uid)
);
CREATE INDEX members_user ON members (app, uid, session_id);

CREATE TABLE messages (
	session_id  bigint  NOT NULL, -- no foreign key: the core may store a message first
	seq         bigint  NOT NULL,
	app         bytea   NOT NULL,
	sender      bytea   NOT NULL, -- chat.Message.From; empty for system notices
	type        bytea   NOT NULL,
	content     bytea,            -- the type's JSON object, as given
	cid         bytea   NOT NULL,
	created_at  bigint  NOT NULL,
	edited_at   bigint  NOT NULL,
	edits       bigint  NOT NULL,
	mentions    bytea,            -- uids, each as uvarint length + bytes
	mention_all boolean NOT NULL,
	PRIMARY KEY (session_id, seq)
);

CREATE TABLE records (
	kind  text COLLATE "C" NOT NULL, -- [a-z0-9_.]{1,32}
	key   bytea NOT NULL,
	value bytea NOT NULL,
	PRIMARY KEY (kind, key)
);

CREATE TABLE restrictions (
	app        bytea    NOT NULL,
	uid        bytea    NOT NULL,
	kind       smallint NOT NULL, -- chat.RestrictionKind: 1 ban, 2 mute
	until      bigint   NOT NULL, -- 0: for ever
	reason     bytea    NOT NULL,
	created_at bigint   NOT NULL,
	PRIMARY KEY (app, uid, kind)
);

-- The seqs handed out per session, for nodes that append to one session
-- together (AllocSeqs; docs/cluster.md). Apart from sessions.last_seq,
-- which is the stored summary's seq and only follows committed messages.
CREATE TABLE session_seqs (
	session_id bigint PRIMARY KEY,
	last_seq   bigint NOT NULL
);
