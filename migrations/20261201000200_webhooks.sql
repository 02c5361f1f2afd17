-- Webhooks: the endpoints operators register, and one delivery row per (event, endpoint),
-- written in the transaction that decides the event (the outbox pattern). A delivery is due
-- when `run_after` has passed; a worker claims it by pushing `run_after` forward (its lease).
-- Deliveries of one endpoint with one `order_key` (the follower the event is about) go out in
-- `id` order: only the oldest pending one of such a queue is ever claimed.
CREATE TABLE webhooks (
    id          BIGSERIAL PRIMARY KEY,
    url         TEXT        NOT NULL,
    secret      TEXT        NOT NULL,
    -- Event types, or '{*}' for every type.
    events      TEXT[]      NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    webhook_id      BIGINT      NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- The event's id as receivers see it: the same for every endpoint and every attempt.
    event_id        UUID        NOT NULL,
    event_type      TEXT        NOT NULL,
    order_key       TEXT        NOT NULL,
    data            JSONB       NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    status          TEXT        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    run_after       TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Retries stop (the delivery fails) after this.
    give_up_at      TIMESTAMPTZ NOT NULL DEFAULT now() + interval '1 day',
    last_status     INTEGER,
    last_error      TEXT,
    last_attempt_at TIMESTAMPTZ,
    delivered_at    TIMESTAMPTZ
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (run_after) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_queue_idx
    ON webhook_deliveries (webhook_id, order_key, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log_idx ON webhook_deliveries (webhook_id, id DESC);

-- Binding codes: a temporary string-scene code carrying the caller's payload. The first scan
-- or follow through it before it expires completes it, once.
CREATE TABLE bindings (
    id           UUID        PRIMARY KEY,
    scene_str    TEXT        NOT NULL UNIQUE,
    payload      JSONB       NOT NULL,
    ticket       TEXT        NOT NULL,
    url          TEXT        NOT NULL,
    image_key    TEXT,
    expires_at   TIMESTAMPTZ NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    openid       TEXT,
    event        TEXT,
    completed_at TIMESTAMPTZ
);
