-- Images uploaded to WeChat as temporary media (posters sent by message). WeChat keeps them
-- three days; until shortly before that the media_id is reused instead of uploading again.
-- content_key is the storage key of the uploaded bytes, so a changed poster is a new row.
CREATE TABLE wechat_media (
    content_key  TEXT PRIMARY KEY,
    media_id     TEXT        NOT NULL,
    uploaded_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
