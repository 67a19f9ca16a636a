-- fieldcase server schema, version 4: when a case was closed, so that devices purge it once the
-- deployment's retention period has passed.
ALTER TABLE cases ADD COLUMN closed_at INTEGER;
