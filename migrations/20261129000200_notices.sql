-- Telling inviters under WeChat's message rules (since 2023-06-12).

-- Each follower's customer-service allowance as Fission can know it from the pushes it sees
-- (a message: 5 within 48 h; a follow, scan or menu click: 3 within 1 minute) and the
-- messages it sent since.
ALTER TABLE users
    ADD COLUMN cs_left      INTEGER     NOT NULL DEFAULT 0,
    ADD COLUMN cs_until     TIMESTAMPTZ,
    ADD COLUMN cs_opened_at TIMESTAMPTZ;

-- One-time subscription notices the follower accepted (each allows one bizsend).
CREATE TABLE notice_subscriptions (
    id           BIGSERIAL PRIMARY KEY,
    openid       TEXT        NOT NULL,
    template_id  TEXT        NOT NULL,
    accepted_at  TIMESTAMPTZ NOT NULL,
    event_id     BIGINT      REFERENCES events (id),
    spent_at     TIMESTAMPTZ,
    withdrawn_at TIMESTAMPTZ
);
CREATE INDEX notice_subscriptions_open_idx ON notice_subscriptions (openid, template_id, id)
    WHERE spent_at IS NULL AND withdrawn_at IS NULL;

-- What the inviter has been told: credits up to this referral id, and each grant once; and
-- what their invite page showed them last (its "new since your last visit").
ALTER TABLE inviter_stats
    ADD COLUMN notified_through BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN seen_through     BIGINT NOT NULL DEFAULT 0;
ALTER TABLE reward_grants ADD COLUMN notified_at TIMESTAMPTZ;
-- Grants made before notices existed were told by the message queued with them.
UPDATE reward_grants SET notified_at = granted_at;
UPDATE inviter_stats s SET notified_through = COALESCE(
    (SELECT max(r.id) FROM referrals r WHERE r.campaign_id = s.campaign_id AND r.inviter_openid = s.openid), 0);

UPDATE inviter_stats SET seen_through = notified_through;

-- A notice job stands for everything one follower has yet to be told: at most one is pending
-- or waiting (for a channel) per follower; a new credit marks it `again` so that a job being
-- sent right now goes round once more instead of losing what arrived meanwhile.
ALTER TABLE outbox
    ADD COLUMN coalesce_key TEXT,
    ADD COLUMN again        BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN channel      TEXT;
ALTER TABLE outbox DROP CONSTRAINT outbox_status_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_status_check
    CHECK (status IN ('pending', 'waiting', 'sent', 'failed'));
CREATE UNIQUE INDEX outbox_one_open_notice ON outbox (coalesce_key)
    WHERE status IN ('pending', 'waiting');
CREATE INDEX outbox_waiting_idx ON outbox (id) WHERE status = 'waiting';

-- How each message went out, for the health page: channel (custom, subscription, template,
-- poster) and outcome (sent, coalesced, 45047, 45015, 43101, waiting, failed).
CREATE TABLE message_log (
    id       BIGSERIAL PRIMARY KEY,
    at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    openid   TEXT        NOT NULL,
    channel  TEXT        NOT NULL,
    outcome  TEXT        NOT NULL,
    credits  INTEGER     NOT NULL DEFAULT 0
);
CREATE INDEX message_log_at_idx ON message_log (at);

-- The channels an operator sets per campaign: a subscription-notice template and a category
-- template, each with its keyword fields mapped to placeholders ("thing1={invitee}" lines).
ALTER TABLE campaigns
    ADD COLUMN template_fields        TEXT NOT NULL DEFAULT '',
    ADD COLUMN subscribe_template_id  TEXT,
    ADD COLUMN subscribe_fields       TEXT NOT NULL DEFAULT '';
