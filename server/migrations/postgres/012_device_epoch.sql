-- fieldcase server schema for PostgreSQL, version 12: the equivalent of ../012_device_epoch.sql
-- (the office epoch in which each device last started over with the office).
ALTER TABLE devices ADD COLUMN office_epoch BYTEA;
