-- fieldcase server schema, version 11: the certificate fingerprints each device last said it
-- holds (its signed x-fieldcase-pins request header, lowercase hex joined by commas) and when,
-- so that `admin tls rotate` switches to the next certificate only once every active device
-- holds it.
ALTER TABLE devices ADD COLUMN tls_pins TEXT;
ALTER TABLE devices ADD COLUMN tls_pins_at INTEGER;
