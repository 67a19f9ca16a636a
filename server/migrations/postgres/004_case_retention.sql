-- fieldcase server schema for PostgreSQL, version 4: the equivalent of ../004_case_retention.sql
-- (when a case was closed, so that devices purge it once the retention period has passed).
ALTER TABLE cases ADD COLUMN closed_at BIGINT;
