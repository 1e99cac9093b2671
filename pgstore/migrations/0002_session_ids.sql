-- The session-id counter of a cluster (chat.SharedStore's
-- ReserveSessionIDs and ClaimSessionID; docs/cluster.md): the highest id
-- reserved or claimed by any node. One row. Ids are uint64 in bigint with
-- the same bits, like sessions.id; the store compares them unsigned, and
-- keeps the counter above every stored session (also those a single node
-- wrote without it).
CREATE TABLE session_ids (
	one     boolean PRIMARY KEY DEFAULT true CHECK (one),
	last_id bigint  NOT NULL
);
INSERT INTO session_ids (one, last_id) VALUES (true, 0);

-- session_seqs (0001) is now the per-session row lock of the cluster's
-- journal (chat.SharedStore's ApplyLocked): its last_seq is the highest
-- seq committed under it.
COMMENT ON TABLE session_seqs IS 'per-session row locks and seq counters of ApplyLocked (pgstore/shared.go)';
