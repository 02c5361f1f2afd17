-- Fission's core schema: pushes, followers, invite codes, campaigns, the referral ledger,
-- the materialised leaderboard and the outbox.

-- Every accepted push, recorded before WeChat gets its answer. The dedupe key makes a
-- retried push (same FromUserName + CreateTime + Event + EventKey) land on the same row.
CREATE TABLE events (
    id           BIGSERIAL PRIMARY KEY,
    dedupe_key   TEXT        NOT NULL UNIQUE,
    openid       TEXT        NOT NULL,
    create_time  TIMESTAMPTZ NOT NULL,
    msg_type     TEXT        NOT NULL,
    event        TEXT,
    event_key    TEXT,
    ticket       TEXT,
    outcome      TEXT        NOT NULL DEFAULT 'recorded',
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX events_openid_idx ON events (openid, create_time);
CREATE INDEX events_received_idx ON events (received_at DESC);

-- What Fission knows of a follower. `followed_since` is the earliest evidence of following
-- (a subscribe, a scan, a message, or an import); a subscribe whose CreateTime is not after
-- it is not a new follower. `state_at` orders subscribe/unsubscribe pushes that arrive late.
CREATE TABLE users (
    openid             TEXT PRIMARY KEY,
    nickname           TEXT,
    avatar_url         TEXT,
    subscribed         BOOLEAN     NOT NULL DEFAULT false,
    followed_since     TIMESTAMPTZ,
    state_at           TIMESTAMPTZ,
    imported_at        TIMESTAMPTZ,
    last_interaction_at TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Campaigns. Exactly one default campaign exists from the first migration: always on,
-- no tiers, 7-day revoke window. A configured campaign that is running takes precedence.
CREATE TABLE campaigns (
    id                  BIGSERIAL PRIMARY KEY,
    name                TEXT        NOT NULL,
    is_default          BOOLEAN     NOT NULL DEFAULT false,
    starts_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    ends_at             TIMESTAMPTZ,
    revoke_window_days  INTEGER     NOT NULL DEFAULT 7 CHECK (revoke_window_days >= 0),
    revoke_rewards      BOOLEAN     NOT NULL DEFAULT false,
    welcome_text        TEXT        NOT NULL DEFAULT '欢迎关注！你是通过 {inviter} 的邀请来的。',
    credit_text         TEXT        NOT NULL DEFAULT '{invitee} 通过你的邀请关注了公众号，你已邀请 {count} 位好友。{next}',
    reward_text         TEXT        NOT NULL DEFAULT '恭喜！你已邀请 {count} 位好友，获得奖励：{reward}。{code}',
    rules               TEXT        NOT NULL DEFAULT '',
    template_id         TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (ends_at IS NULL OR ends_at > starts_at)
);
CREATE UNIQUE INDEX campaigns_one_default ON campaigns (is_default) WHERE is_default;
-- Starts at the whole second: pushes carry CreateTime in seconds.
INSERT INTO campaigns (name, is_default, starts_at) VALUES ('默认活动', true, date_trunc('second', now()));

CREATE TABLE reward_tiers (
    id          BIGSERIAL PRIMARY KEY,
    campaign_id BIGINT  NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    threshold   INTEGER NOT NULL CHECK (threshold > 0),
    name        TEXT    NOT NULL,
    uses_codes  BOOLEAN NOT NULL DEFAULT false,
    UNIQUE (campaign_id, threshold)
);

-- Operator-uploaded codes (coupons, redemption codes) a tier hands out one by one.
CREATE TABLE reward_codes (
    id          BIGSERIAL PRIMARY KEY,
    tier_id     BIGINT NOT NULL REFERENCES reward_tiers (id) ON DELETE CASCADE,
    code        TEXT   NOT NULL,
    granted_to  TEXT,
    granted_at  TIMESTAMPTZ,
    UNIQUE (tier_id, code)
);
CREATE INDEX reward_codes_free_idx ON reward_codes (tier_id, id) WHERE granted_to IS NULL;

CREATE TABLE reward_grants (
    id          BIGSERIAL PRIMARY KEY,
    tier_id     BIGINT NOT NULL REFERENCES reward_tiers (id) ON DELETE CASCADE,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    openid      TEXT   NOT NULL,
    code        TEXT,
    status      TEXT   NOT NULL CHECK (status IN ('granted', 'out_of_stock', 'revoked')),
    granted_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tier_id, openid)
);

-- Named channel codes (a store, a printed poster); share the permanent quota with users.
CREATE TABLE channels (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Scene numbers. Permanent codes draw from 1..=100000 (the account-wide cap); temporary
-- codes from above that range so a scene always names exactly one code.
CREATE SEQUENCE permanent_scene_seq MINVALUE 1 MAXVALUE 2147483647;
CREATE SEQUENCE temporary_scene_seq START WITH 100001 MINVALUE 100001 MAXVALUE 2147483647;

-- One code per follower (owner_openid) or per channel. scene_id is set for numeric scenes,
-- scene_str for string scenes; both are unique so a push's EventKey resolves to one owner.
CREATE TABLE invite_codes (
    id            BIGSERIAL PRIMARY KEY,
    owner_openid  TEXT UNIQUE,
    channel_id    BIGINT UNIQUE REFERENCES channels (id) ON DELETE CASCADE,
    permanent     BOOLEAN     NOT NULL,
    scene_id      INTEGER UNIQUE,
    scene_str     TEXT UNIQUE,
    quota_slot    INTEGER UNIQUE,
    ticket        TEXT        NOT NULL,
    url           TEXT        NOT NULL,
    expires_at    TIMESTAMPTZ,
    image_key     TEXT,
    scans         BIGINT      NOT NULL DEFAULT 0,
    follows       BIGINT      NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    renewed_at    TIMESTAMPTZ,
    CHECK ((owner_openid IS NULL) <> (channel_id IS NULL)),
    CHECK ((scene_id IS NULL) <> (scene_str IS NULL)),
    CHECK (permanent OR expires_at IS NOT NULL)
);
CREATE INDEX invite_codes_expiring_idx ON invite_codes (expires_at) WHERE NOT permanent;

-- The referral ledger. A credit is never edited: a revocation is its own row.
CREATE TABLE referrals (
    id              BIGSERIAL PRIMARY KEY,
    campaign_id     BIGINT      NOT NULL REFERENCES campaigns (id),
    invitee_openid  TEXT        NOT NULL,
    inviter_openid  TEXT        NOT NULL,
    scene           TEXT        NOT NULL,
    event_id        BIGINT      NOT NULL REFERENCES events (id),
    credited_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT referrals_once_per_campaign UNIQUE (campaign_id, invitee_openid)
);
CREATE INDEX referrals_inviter_idx ON referrals (campaign_id, inviter_openid, credited_at);
CREATE INDEX referrals_invitee_idx ON referrals (invitee_openid);

CREATE TABLE referral_revocations (
    id           BIGSERIAL PRIMARY KEY,
    referral_id  BIGINT      NOT NULL UNIQUE REFERENCES referrals (id),
    event_id     BIGINT      REFERENCES events (id),
    revoked_at   TIMESTAMPTZ NOT NULL
);

-- Leaderboard, kept in the crediting transaction; rebuildable from the ledger.
-- reached_at: when the inviter reached their current count (ties go to the earlier).
CREATE TABLE inviter_stats (
    campaign_id  BIGINT      NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    openid       TEXT        NOT NULL,
    invites      INTEGER     NOT NULL,
    reached_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (campaign_id, openid)
);
CREATE INDEX inviter_stats_rank_idx ON inviter_stats (campaign_id, invites DESC, reached_at ASC, openid);

-- Work done after the push is answered: messages, rewards. Written in the same
-- transaction as the decision that causes it, so nothing is lost on a crash.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    kind            TEXT        NOT NULL,
    payload         JSONB       NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    run_after       TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    done_at         TIMESTAMPTZ
);
CREATE INDEX outbox_due_idx ON outbox (run_after) WHERE status = 'pending';

-- Small facts the service keeps about itself (quota switch, import cursor).
CREATE TABLE service_state (
    key         TEXT PRIMARY KEY,
    value       JSONB       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
