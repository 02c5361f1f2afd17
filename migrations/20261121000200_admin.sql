-- The dashboard's operator accounts, the per-hour tally of WeChat API calls it shows, and an
-- index for the dashboard's "credited since …" figures.

-- `session_epoch`: cookie sessions cannot be deleted server-side, so a session carries the
-- epoch it was issued in; logging out (or a password change) bumps it and every earlier
-- session of the account stops working.
CREATE TABLE admin_users (
    id                    BIGSERIAL PRIMARY KEY,
    username              TEXT        NOT NULL UNIQUE CHECK (length(username) BETWEEN 1 AND 64),
    password_hash         TEXT        NOT NULL,
    session_epoch         BIGINT      NOT NULL DEFAULT 0,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- WeChat API calls per hour, api and errcode, summed from each process's counters by a
-- flusher every few seconds (never one INSERT per call).
CREATE TABLE wechat_api_calls (
    hour     TIMESTAMPTZ NOT NULL,
    api      TEXT        NOT NULL,
    errcode  BIGINT      NOT NULL,
    calls    BIGINT      NOT NULL,
    PRIMARY KEY (hour, api, errcode)
);

CREATE INDEX referrals_credited_idx ON referrals (credited_at);
