-- Each instance keeps the campaigns and their tiers in memory for the push path. Any change to
-- them bumps this version in the same transaction, and the next batch of pushes that reads a
-- new version reloads them: an operator's save takes effect with the next push, on every
-- instance.
CREATE TABLE campaign_version (
    only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    version  BIGINT  NOT NULL
);
INSERT INTO campaign_version (only_row, version) VALUES (true, 1);

CREATE FUNCTION bump_campaign_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE campaign_version SET version = version + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER campaigns_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON campaigns
    FOR EACH STATEMENT EXECUTE FUNCTION bump_campaign_version();
CREATE TRIGGER reward_tiers_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON reward_tiers
    FOR EACH STATEMENT EXECUTE FUNCTION bump_campaign_version();
