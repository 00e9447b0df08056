-- The relay's first schema (as the SQLite relay shipped it, hence IF NOT EXISTS: a database
-- made before migrations were counted adopts it unchanged).
CREATE TABLE IF NOT EXISTS gateway (
    gateway_id  TEXT PRIMARY KEY,
    public_key  BLOB NOT NULL,
    owner_key   BLOB NOT NULL,
    registered_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log_state (
    gateway_id  TEXT PRIMARY KEY REFERENCES gateway (gateway_id),
    held_size   INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS entry (
    gateway_id  TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    sealed      BLOB NOT NULL,
    leaf_hash   BLOB NOT NULL,
    PRIMARY KEY (gateway_id, idx)
);
CREATE TABLE IF NOT EXISTS tree_node (
    gateway_id  TEXT NOT NULL,
    level       INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    hash        BLOB NOT NULL,
    PRIMARY KEY (gateway_id, level, idx)
);
CREATE TABLE IF NOT EXISTS witnessed (
    gateway_id  TEXT NOT NULL,
    tree_size   INTEGER NOT NULL,
    root_hash   BLOB NOT NULL,
    time_ms     INTEGER NOT NULL,
    signature   BLOB NOT NULL,
    source      TEXT NOT NULL,
    cosignature BLOB,
    PRIMARY KEY (gateway_id, tree_size, root_hash, source)
);
CREATE TABLE IF NOT EXISTS alarm (
    id          INTEGER PRIMARY KEY,
    gateway_id  TEXT NOT NULL,
    time_ms     INTEGER NOT NULL,
    code        TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mailbox (
    id          INTEGER PRIMARY KEY,
    gateway_id  TEXT NOT NULL,
    sealed      BLOB NOT NULL,
    posted_ms   INTEGER NOT NULL
);
