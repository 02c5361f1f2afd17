-- Each campaign's poster: a background image in storage (NULL = the bundled default) and
-- where the follower's QR code, avatar and nickname go on it, in background pixels.
ALTER TABLE campaigns
    ADD COLUMN poster_background_key TEXT,
    ADD COLUMN poster_layout JSONB NOT NULL DEFAULT
        '{"qr": {"x": 465, "y": 1000, "size": 280},
          "avatar": {"x": 60, "y": 1040, "size": 120},
          "nickname": {"x": 200, "y": 1075, "size": 40, "color": "#ffffff"}}';
