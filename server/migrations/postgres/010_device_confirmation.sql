-- fieldcase server schema for PostgreSQL, version 10: the equivalent of
-- ../010_device_confirmation.sql (a device waits for an admin to confirm its key fingerprint).
ALTER TABLE devices ADD COLUMN confirmed_at BIGINT;
UPDATE devices SET confirmed_at = enrolled_at;
