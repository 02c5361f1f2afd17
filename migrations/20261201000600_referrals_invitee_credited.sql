-- When a follower was themselves credited (the chain signal's `invited_at`, read by the push
-- path for every inviter a batch credits) is min(credited_at) by invitee. With an index on the
-- invitee alone PostgreSQL answered it by walking `referrals_credited_idx` in time order until
-- a row of that invitee turned up — the whole ledger for an inviter nobody invited, so every
-- batch slowed as the ledger grew. With the time in the invitee's index it is one index probe.
CREATE INDEX referrals_invitee_credited_idx ON referrals (invitee_openid, credited_at);
DROP INDEX referrals_invitee_idx;
