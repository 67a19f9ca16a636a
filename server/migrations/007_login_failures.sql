-- fieldcase server schema, version 7: failed logins keep the typed user name only as a keyed tag
-- (HMAC under a key derived from server.key), since a password typed into the name field must
-- not be stored. The failures recorded before held the name as typed: they are erased (with
-- secure_delete, for good); at worst a name and address get their five attempts again.
DELETE FROM web_login_failures;
