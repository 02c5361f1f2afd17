-- Schema of the Python reference app (bench/peer): the least a WeChat referral callback
-- needs to be correct. A push is recorded once (WeChat retries with the same CreateTime),
-- and a follower is credited to at most one inviter.

-- Invite codes: the scene of a parametric QR code and the follower who owns it.
CREATE TABLE codes (
    scene text PRIMARY KEY,
    owner text NOT NULL
);

-- Every push, deduplicated on what WeChat keeps the same across its retries.
CREATE TABLE events (
    id bigserial PRIMARY KEY,
    from_user text NOT NULL,
    create_time bigint NOT NULL,
    event text NOT NULL,
    event_key text NOT NULL DEFAULT '',
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (from_user, create_time, event, event_key)
);

-- One credit per new follower.
CREATE TABLE referrals (
    id bigserial PRIMARY KEY,
    invitee text NOT NULL UNIQUE,
    inviter text NOT NULL,
    scene text NOT NULL,
    event_id bigint NOT NULL REFERENCES events (id),
    credited_at timestamptz NOT NULL DEFAULT now()
);
