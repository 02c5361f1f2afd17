-- The scene-burst risk signal: a burst on one scene while the account is otherwise quiet.
--
-- The push path counts every follow the account receives in 10-second buckets (by CreateTime),
-- one row per bucket and push writer (`writer`, chosen at random when a writer starts), so
-- batches written at the same moment by different writers or instances never wait on one row;
-- readers sum the writers. Buckets older than a day are forgotten by a periodic job.
CREATE TABLE account_follows (
    bucket   BIGINT   NOT NULL,  -- unix seconds, a multiple of 10
    writer   SMALLINT NOT NULL,
    follows  INTEGER  NOT NULL,
    PRIMARY KEY (bucket, writer)
);

-- At least `risk_burst_min` credits through an inviter's code within 60 s, making at least
-- `risk_burst_percent` % of all the account's follows in that minute, fire the signal.
-- 0 (the default) leaves it off: an honest follower sharing their code in a busy group chat on
-- a quiet day looks the same; a campaign whose farms come in small bursts turns it on.
ALTER TABLE campaigns
    ADD COLUMN risk_burst_min     INTEGER NOT NULL DEFAULT 0  CHECK (risk_burst_min BETWEEN 0 AND 100),
    ADD COLUMN risk_burst_percent INTEGER NOT NULL DEFAULT 80 CHECK (risk_burst_percent BETWEEN 1 AND 100);
