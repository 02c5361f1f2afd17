-- Risk: each campaign's policy and thresholds, counters per inviter kept by the push path
-- (bounded, updated set-based per batch), the signals that fired with their evidence, and every
-- decision — automatic or an operator's — as its own row.

ALTER TABLE campaigns
    -- flag: mark only; hold: rewards reached while flagged wait for an operator;
    -- block: as hold, and above the hard threshold the inviter is blocked automatically.
    ADD COLUMN risk_policy           TEXT    NOT NULL DEFAULT 'flag'
        CHECK (risk_policy IN ('flag', 'hold', 'block')),
    -- More than this many credits within 60 s (within an hour) fires the velocity signal.
    ADD COLUMN risk_per_minute       INTEGER NOT NULL DEFAULT 10 CHECK (risk_per_minute BETWEEN 1 AND 100),
    ADD COLUMN risk_per_hour         INTEGER NOT NULL DEFAULT 60 CHECK (risk_per_hour BETWEEN 1 AND 100),
    -- At least this share (percent) of friends leaving within the revoke window, once the
    -- inviter has at least `risk_left_min_friends` friends, fires the leaving signal.
    ADD COLUMN risk_left_percent     INTEGER NOT NULL DEFAULT 50 CHECK (risk_left_percent BETWEEN 1 AND 100),
    ADD COLUMN risk_left_min_friends INTEGER NOT NULL DEFAULT 10 CHECK (risk_left_min_friends >= 1),
    -- Under `block`: more than this many credits within 60 s blocks the inviter.
    ADD COLUMN risk_block_per_minute INTEGER NOT NULL DEFAULT 20 CHECK (risk_block_per_minute BETWEEN 1 AND 100),
    ADD COLUMN block_text            TEXT    NOT NULL
        DEFAULT '你的邀请记录存在异常，已被取消，相关奖励已收回。如有疑问请联系客服。';

-- What the push path knows of an inviter's pace and friends, per campaign. `recent` holds the
-- CreateTimes of the latest credits (at most 128: enough for any per-minute or per-hour
-- threshold the campaign may set); `friends` counts credits, `friends_left` those revoked
-- because the friend left within the revoke window.
CREATE TABLE risk_inviters (
    campaign_id   BIGINT        NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    openid        TEXT          NOT NULL,
    status        TEXT          NOT NULL DEFAULT 'ok'
        CHECK (status IN ('ok', 'flagged', 'held', 'blocked')),
    recent        TIMESTAMPTZ[] NOT NULL DEFAULT '{}',
    friends       INTEGER       NOT NULL DEFAULT 0,
    friends_left  INTEGER       NOT NULL DEFAULT 0,
    -- An operator approved the inviter (or lifted a block): signals no longer escalate them.
    cleared_at    TIMESTAMPTZ,
    -- An operator decided since the latest automatic escalation: off the pending queue.
    reviewed_at   TIMESTAMPTZ,
    changed_at    TIMESTAMPTZ   NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, openid)
);
CREATE INDEX risk_inviters_queue_idx ON risk_inviters (changed_at DESC) WHERE status <> 'ok';

-- The strongest value each signal reached for an inviter, with its threshold and time.
CREATE TABLE risk_signals (
    campaign_id  BIGINT      NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    openid       TEXT        NOT NULL,
    name         TEXT        NOT NULL,
    value        DOUBLE PRECISION NOT NULL,
    threshold    DOUBLE PRECISION NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (campaign_id, openid, name)
);

-- Every status change: `operator` NULL when Fission decided by itself.
CREATE TABLE risk_decisions (
    id           BIGSERIAL PRIMARY KEY,
    campaign_id  BIGINT      NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    openid       TEXT        NOT NULL,
    action       TEXT        NOT NULL
        CHECK (action IN ('flag', 'hold', 'block', 'approve', 'reject', 'unblock')),
    operator     TEXT,
    at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX risk_decisions_inviter_idx ON risk_decisions (campaign_id, openid, id);

-- A block cancels the inviter's credits as revocations of its own kind, naming the decision.
ALTER TABLE referral_revocations
    ADD COLUMN reason      TEXT   NOT NULL DEFAULT 'left' CHECK (reason IN ('left', 'blocked')),
    ADD COLUMN decision_id BIGINT REFERENCES risk_decisions (id);
