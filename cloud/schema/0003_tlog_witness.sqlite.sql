-- The relay as a C2SP tlog-witness (cloud/tlog_witness.py, docs/cloud.md): the logs it was
-- told to trust besides the registered gateways (an Ed25519 vkey each, its key name the
-- origin), and for every origin the latest checkpoint it cosigned, with the cosigned note
-- served at <monitoring prefix>/<origin hash>/checkpoint.
CREATE TABLE witness_log (
    origin      TEXT PRIMARY KEY,
    vkey        TEXT NOT NULL,
    added_ms    INTEGER NOT NULL
);
CREATE TABLE witness_latest (
    origin      TEXT PRIMARY KEY,
    origin_hash TEXT NOT NULL UNIQUE,
    tree_size   INTEGER NOT NULL,
    root_hash   BLOB NOT NULL,
    note        TEXT NOT NULL,
    updated_ms  INTEGER NOT NULL
);
