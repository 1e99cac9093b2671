-- The bytes of uploads on a cluster (chat.BlobStore; docs/cluster.md,
-- "Uploads on a cluster"): each node's uploads folder is a cache of
-- these. A blob is named by its app and its id (the hex SHA-256 of its
-- content) and stored in chunks of 1 MiB, written in one transaction
-- with its row in blobs. stored_at is the database's clock, moved to
-- now() by every upload of the same bytes, so that a garbage collection
-- that found the blob unreferenced leaves it when it is uploaded again.
CREATE TABLE blobs (
	app       bytea       NOT NULL,
	id        bytea       NOT NULL,
	size      bigint      NOT NULL,
	stored_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (app, id)
);

CREATE TABLE blob_chunks (
	app  bytea   NOT NULL,
	id   bytea   NOT NULL,
	n    integer NOT NULL, -- 0, 1, 2 … in the order of the bytes
	data bytea   NOT NULL,
	PRIMARY KEY (app, id, n),
	FOREIGN KEY (app, id) REFERENCES blobs (app, id) ON DELETE CASCADE
);
-- Uploads are mostly compressed already (images, audio, video): stored
-- out of line without trying to compress them again.
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
