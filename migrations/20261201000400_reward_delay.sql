-- Delayed rewards, and the silent-friends risk signal.
--
-- Delayed rewards: a campaign may wait N days before granting a tier an inviter reached. The
-- tier waits as a `reward_pending` row until `due_at` (the CreateTime of the credit that reached
-- it, plus the delay); a periodic job then grants it if the inviter's live count still reaches
-- the tier (friends who left within the revoke window no longer count), or lets it lapse.

ALTER TABLE campaigns
    ADD COLUMN reward_delay_days INTEGER NOT NULL DEFAULT 0 CHECK (reward_delay_days BETWEEN 0 AND 90);

CREATE TABLE reward_pending (
    tier_id      BIGINT      NOT NULL REFERENCES reward_tiers (id) ON DELETE CASCADE,
    openid       TEXT        NOT NULL,
    campaign_id  BIGINT      NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    reached_at   TIMESTAMPTZ NOT NULL,
    due_at       TIMESTAMPTZ NOT NULL,
    -- waiting: not due or not settled yet; granted: the job (or an approval) granted it;
    -- lapsed: due with too few friends left (reaching the tier again waits again).
    status       TEXT        NOT NULL DEFAULT 'waiting'
        CHECK (status IN ('waiting', 'granted', 'lapsed')),
    grant_id     BIGINT      REFERENCES reward_grants (id) ON DELETE SET NULL,
    settled_at   TIMESTAMPTZ,
    PRIMARY KEY (tier_id, openid)
);
CREATE INDEX reward_pending_due_idx ON reward_pending (due_at) WHERE status = 'waiting';
CREATE INDEX reward_pending_inviter_idx ON reward_pending (openid, campaign_id);

-- Silent friends: how many of an inviter's friends did something after following (a message,
-- menu click or scan later than their credit), counted by the push path at each friend's first
-- time; more than `risk_silent_percent` of the friends older than a day never doing anything
-- fires the signal. 0 (the default) leaves it off: most real followers never write to an
-- account, so silence alone flags honest inviters; a campaign whose friends are expected to
-- act (reply a keyword, press a menu) turns it on.
ALTER TABLE risk_inviters ADD COLUMN friends_active INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns
    ADD COLUMN risk_silent_percent INTEGER NOT NULL DEFAULT 0 CHECK (risk_silent_percent BETWEEN 0 AND 100);
