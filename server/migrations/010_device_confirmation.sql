-- fieldcase server schema, version 10: a device enrolled by code waits until an admin confirms
-- its key fingerprint (shown on the phone) before it may sync, so whoever used a worker's code
-- first gets nothing. Devices enrolled before count as confirmed.
ALTER TABLE devices ADD COLUMN confirmed_at INTEGER;
UPDATE devices SET confirmed_at = enrolled_at;
