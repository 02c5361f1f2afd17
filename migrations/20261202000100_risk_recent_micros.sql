-- An inviter's latest credit times (`risk_inviters.recent`) as microseconds since the epoch,
-- newest first. Every batch that credits an inviter merges its times into the row and reads
-- the row back for the risk rules: as timestamps that was a sort of every kept time on the way
-- in and a conversion of each on the way out — for a busy inviter (128 times kept) most of the
-- cost of counting a batch. Kept sorted, a batch's times (newer than the row's, when pushes
-- arrive in order) are put in front and the tail cut; only out-of-order times need a sort.
ALTER TABLE risk_inviters ADD COLUMN recent_us BIGINT[] NOT NULL DEFAULT '{}';
UPDATE risk_inviters
SET recent_us = ARRAY(SELECT (extract(epoch FROM t) * 1000000)::bigint
                      FROM unnest(recent) AS t ORDER BY t DESC)
WHERE cardinality(recent) > 0;
ALTER TABLE risk_inviters DROP COLUMN recent;
ALTER TABLE risk_inviters RENAME COLUMN recent_us TO recent;
