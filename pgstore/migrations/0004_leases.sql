-- Leases for the work one node of a cluster does at a time (the webhook
-- dispatcher; docs/cluster.md): a lease is its holder's until `until`,
-- which the holder keeps moving ahead. Times are the database's clock.
CREATE TABLE leases (
	name   text PRIMARY KEY,
	holder text NOT NULL,
	until  timestamptz NOT NULL
);
