-- The same change as 0002_nonces_and_mail_order.sqlite.sql.
CREATE TABLE request_nonce (
    nonce       TEXT PRIMARY KEY,
    expires_ms  BIGINT NOT NULL
);
CREATE INDEX request_nonce_expiry ON request_nonce (expires_ms);
CREATE TABLE mail (
    gateway_id  TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    sealed      BYTEA NOT NULL,
    posted_ms   BIGINT NOT NULL,
    PRIMARY KEY (gateway_id, seq)
);
INSERT INTO mail (gateway_id, seq, sealed, posted_ms)
    SELECT gateway_id, id, sealed, posted_ms FROM mailbox;
DROP TABLE mailbox;
