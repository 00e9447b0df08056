-- Request nonces move from the relay's memory into the database (a second relay process
-- must refuse a replay the first one saw), and mail is numbered per gateway under the
-- gateway's lock: a global counter can commit out of order across processes, and a reader
-- that saw id 6 before id 5 committed would never read 5. Old ids are kept as the new
-- numbers, so a gateway's stored cursor stays valid.
CREATE TABLE request_nonce (
    nonce       TEXT PRIMARY KEY,
    expires_ms  INTEGER NOT NULL
);
CREATE INDEX request_nonce_expiry ON request_nonce (expires_ms);
CREATE TABLE mail (
    gateway_id  TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    sealed      BLOB NOT NULL,
    posted_ms   INTEGER NOT NULL,
    PRIMARY KEY (gateway_id, seq)
);
INSERT INTO mail (gateway_id, seq, sealed, posted_ms)
    SELECT gateway_id, id, sealed, posted_ms FROM mailbox;
DROP TABLE mailbox;
CREATE INDEX alarm_gateway ON alarm (gateway_id, id);
