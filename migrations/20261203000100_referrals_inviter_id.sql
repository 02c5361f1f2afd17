-- A notice gathers an inviter's credits since their watermark (`inviter_stats.notified_through`,
-- a referral id). The inviter's index ordered their credits by time, so PostgreSQL read every
-- credit the inviter ever had and kept those above the watermark: each notice of an inviter
-- with 10,000 friends read 10,000 rows to find the few new ones. Ordered by id, it reads the
-- new ones. The pages listing an inviter's friends newest first (dashboard, risk timeline) now
-- sort that inviter's credits instead of reading them in order; the push path writes no more
-- index entries than before.
CREATE INDEX referrals_inviter_id_idx ON referrals (campaign_id, inviter_openid, id);
DROP INDEX referrals_inviter_idx;
