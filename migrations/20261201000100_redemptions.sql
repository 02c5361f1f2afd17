-- Using a reward: what the follower is told to do to claim each tier, whether staff redeem it
-- in person (a QR code on the follower's page, scanned by a staff account), and the one
-- redemption each such grant may have. Operator accounts get a role: a `staff` account may
-- only redeem.

ALTER TABLE admin_users
    ADD COLUMN role TEXT NOT NULL DEFAULT 'admin' CHECK (role IN ('admin', 'staff'));

ALTER TABLE reward_tiers
    ADD COLUMN claim_instructions TEXT NOT NULL DEFAULT '',
    ADD COLUMN redeem_in_store BOOLEAN NOT NULL DEFAULT false;

-- One row per grant shown with a redemption code: `token` is what the code carries (random,
-- never the grant id); `redeemed_at`/`redeemed_by` are set once, by whoever scanned it.
-- Kept apart from `reward_grants.status`, which says whether the reward is the follower's.
CREATE TABLE reward_redemptions (
    grant_id     BIGINT PRIMARY KEY REFERENCES reward_grants (id) ON DELETE CASCADE,
    token        TEXT        NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    redeemed_at  TIMESTAMPTZ,
    redeemed_by  BIGINT REFERENCES admin_users (id),
    CHECK ((redeemed_at IS NULL) = (redeemed_by IS NULL))
);

-- The bundled poster background now leaves its top to the campaign's name and top reward and
-- keeps the QR code 40 px from the edges (it sat 5 px from the right edge): the layout it is
-- drawn for moves, for new campaigns and for those still on the bundled background with the
-- old layout.
ALTER TABLE campaigns ALTER COLUMN poster_layout SET DEFAULT
    '{"qr": {"x": 430, "y": 990, "size": 280},
      "avatar": {"x": 60, "y": 1010, "size": 110},
      "nickname": {"x": 60, "y": 1140, "size": 36, "color": "#ffffff"}}';
UPDATE campaigns SET poster_layout = DEFAULT
WHERE poster_background_key IS NULL
  AND poster_layout = '{"qr": {"x": 465, "y": 1000, "size": 280},
                        "avatar": {"x": 60, "y": 1040, "size": 120},
                        "nickname": {"x": 200, "y": 1075, "size": 40, "color": "#ffffff"}}'::jsonb;
