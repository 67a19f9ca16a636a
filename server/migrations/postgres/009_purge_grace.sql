-- fieldcase server schema for PostgreSQL, version 9: when the hub first told a device to purge a case. Its
-- uploads to that case are taken for an hour after (what it wrote before the order still
-- arrives), then refused, whether or not it ever sends its purge receipt.
ALTER TABLE device_case_state ADD COLUMN purge_ordered_at BIGINT;
