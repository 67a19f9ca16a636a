-- fieldcase server schema for PostgreSQL, version 11: the equivalent of ../011_tls_pins.sql
-- (the certificate fingerprints each device last said it holds, and when).
ALTER TABLE devices ADD COLUMN tls_pins TEXT;
ALTER TABLE devices ADD COLUMN tls_pins_at BIGINT;
