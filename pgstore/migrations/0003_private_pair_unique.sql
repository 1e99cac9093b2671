-- One private session per pair: two nodes opening the same pair's
-- private chat at once each create one; the unique index refuses the
-- second (pgstore.ErrPairTaken) and the losing node's core reads the
-- winner's (docs/cluster.md). It replaces the plain index of 0001, which
-- served PrivateSession, on the same expressions.
--
-- A single chatd never stores a pair twice; if a database does hold one,
-- say which ids, instead of PostgreSQL's bare "could not create unique
-- index".
DO $$
DECLARE
	dup record;
BEGIN
	SELECT encode(app, 'escape') AS app, array_agg(id ORDER BY id) AS ids INTO dup
	FROM sessions WHERE kind = 1
	GROUP BY app, least(pair0, pair1), greatest(pair0, pair1) HAVING count(*) > 1 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'private sessions % of app % are one pair''s: a pair may have one private session', dup.ids, dup.app
			USING HINT = 'keep one: move the others'' members and messages to it, or delete them, then start chatd again';
	END IF;
END $$;

DROP INDEX sessions_pair;
CREATE UNIQUE INDEX sessions_pair ON sessions (app, least(pair0, pair1), greatest(pair0, pair1)) WHERE kind = 1;
