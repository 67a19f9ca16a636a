-- fieldcase device store, schema 2: what this device knows the office already has, per case
-- (sealed: the heads acknowledged by the server).
CREATE TABLE sync_state (
    case_id BLOB PRIMARY KEY,
    state   BLOB NOT NULL
) STRICT;
