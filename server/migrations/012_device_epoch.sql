-- fieldcase server schema, version 12: the office epoch in which each device last started over
-- with the office (after a restore from a backup), so that a request delayed from before it
-- does not make the office forget what the device holds a second time.
ALTER TABLE devices ADD COLUMN office_epoch BLOB;
