-- Short leases on work that calls WeChat (issuing a follower's code, uploading a poster): the
-- holder calls WeChat holding no database connection, and stores the result in the transaction
-- that ends the lease. A lease that outlives its holder (a crash) expires and can be taken over.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      UUID        NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
