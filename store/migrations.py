"""The database schema as numbered, forward-only migrations.

Each migration runs in one transaction together with ``PRAGMA user_version = N``, so a
database is always at exactly one version. Migrations are never edited once released: a
change is a new migration. A database whose version is above ``LATEST_VERSION`` was written
by newer code and is refused (``SchemaTooNew``) rather than misread.

Append-only tables (audit entries, tree nodes, checkpoints) carry triggers that refuse UPDATE
and DELETE. Triggers stop mistakes and casual edits; against a thief who drops them, the
Merkle tree and the signed checkpoints are what make tampering visible.
"""

from __future__ import annotations

import sqlite3

from store.errors import SchemaTooNew, StoreError
from store.sqlite_errors import from_sqlite

# v1: the audit log, its tree and its checkpoints.
_V1 = """
CREATE TABLE gateway_identity (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    origin      TEXT NOT NULL,
    public_key  BLOB NOT NULL CHECK (length(public_key) = 32)
);
CREATE TABLE audit_entry (
    idx         INTEGER PRIMARY KEY CHECK (idx >= 0),
    time_ms     INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL,
    sealed      INTEGER NOT NULL CHECK (sealed IN (0, 1)),
    leaf_bytes  BLOB NOT NULL,
    leaf_hash   BLOB NOT NULL CHECK (length(leaf_hash) = 32)
);
CREATE TRIGGER audit_entry_in_order BEFORE INSERT ON audit_entry
WHEN NEW.idx IS NOT (SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_entry)
BEGIN SELECT RAISE(ABORT, 'audit entries are appended in index order'); END;
CREATE TABLE merkle_node (
    level INTEGER NOT NULL CHECK (level >= 1),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    hash  BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE checkpoint (
    tree_size   INTEGER PRIMARY KEY CHECK (tree_size >= 0),
    time_ms     INTEGER NOT NULL,
    origin      TEXT NOT NULL,
    root_hash   BLOB NOT NULL CHECK (length(root_hash) = 32),
    signature   BLOB NOT NULL CHECK (length(signature) = 64)
);
CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry
BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only'); END;
CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry
BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only'); END;
CREATE TRIGGER merkle_node_no_update BEFORE UPDATE ON merkle_node
BEGIN SELECT RAISE(ABORT, 'merkle_node is append-only'); END;
CREATE TRIGGER merkle_node_no_delete BEFORE DELETE ON merkle_node
BEGIN SELECT RAISE(ABORT, 'merkle_node is append-only'); END;
CREATE TRIGGER checkpoint_no_update BEFORE UPDATE ON checkpoint
BEGIN SELECT RAISE(ABORT, 'checkpoint is append-only'); END;
CREATE TRIGGER checkpoint_no_delete BEFORE DELETE ON checkpoint
BEGIN SELECT RAISE(ABORT, 'checkpoint is append-only'); END;
CREATE TRIGGER gateway_identity_no_update BEFORE UPDATE ON gateway_identity
BEGIN SELECT RAISE(ABORT, 'the gateway identity is set once'); END;
"""

# v2: the state behind offline decisions. The time floor starts from the log itself.
_V2 = """
CREATE TABLE ticket_use (
    ticket_id   TEXT PRIMARY KEY,
    uses        INTEGER NOT NULL CHECK (uses >= 0),
    max_uses    INTEGER NOT NULL CHECK (max_uses >= 1),
    last_ms     INTEGER NOT NULL
);
CREATE TABLE challenge (
    nonce       BLOB PRIMARY KEY CHECK (length(nonce) = 32),
    bound_to    TEXT NOT NULL,
    issued_ms   INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    consumed_ms INTEGER
);
CREATE INDEX challenge_expiry ON challenge (expires_ms);
CREATE TABLE revocation_list (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    seq         INTEGER NOT NULL CHECK (seq >= 0),
    token       TEXT NOT NULL,
    stored_ms   INTEGER NOT NULL
);
CREATE TRIGGER revocation_list_forward BEFORE UPDATE ON revocation_list
WHEN NEW.seq <= OLD.seq
BEGIN SELECT RAISE(ABORT, 'a revocation list is replaced only by a higher seq'); END;
CREATE TABLE time_floor (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    time_ms     INTEGER NOT NULL
);
INSERT INTO time_floor (singleton, time_ms)
    SELECT 1, COALESCE(MAX(time_ms), 0) FROM audit_entry;
CREATE TABLE access_session (
    session_id  TEXT PRIMARY KEY,
    door        TEXT NOT NULL,
    ticket_id   TEXT,
    state       TEXT NOT NULL,
    terminal    INTEGER NOT NULL CHECK (terminal IN (0, 1)),
    opened_ms   INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);
CREATE UNIQUE INDEX access_session_one_open_per_door ON access_session (door)
    WHERE terminal = 0;
CREATE TABLE access_session_event (
    session_id  TEXT NOT NULL REFERENCES access_session (session_id),
    seq         INTEGER NOT NULL,
    state       TEXT NOT NULL,
    time_ms     INTEGER NOT NULL,
    audit_index INTEGER REFERENCES audit_entry (idx),
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
"""

# v3: lock pairings, the clip index, and what the cloud has acknowledged and cosigned.
_V3 = """
CREATE TABLE lock_pairing (
    door        TEXT PRIMARY KEY,
    vendor      TEXT NOT NULL,
    data        BLOB NOT NULL,
    updated_ms  INTEGER NOT NULL
);
CREATE TABLE clip (
    path        TEXT PRIMARY KEY,
    sha256      BLOB NOT NULL CHECK (length(sha256) = 32),
    entry_index INTEGER NOT NULL REFERENCES audit_entry (idx),
    size_bytes  INTEGER NOT NULL CHECK (size_bytes >= 0)
);
CREATE INDEX clip_by_entry ON clip (entry_index);
CREATE TABLE sync_cursor (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    acked_size  INTEGER NOT NULL CHECK (acked_size >= 0),
    updated_ms  INTEGER NOT NULL
);
CREATE TRIGGER sync_cursor_forward BEFORE UPDATE ON sync_cursor
WHEN NEW.acked_size < OLD.acked_size
BEGIN SELECT RAISE(ABORT, 'the acknowledged tree size never goes back'); END;
CREATE TABLE checkpoint_cosignature (
    tree_size   INTEGER NOT NULL REFERENCES checkpoint (tree_size),
    witness     TEXT NOT NULL,
    signature   BLOB NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (tree_size, witness)
) WITHOUT ROWID;
"""

# v4: use counts keyed on the ticket's issuer and id, not the id alone (issue 11, finding 9),
# and revocations held as a union of entries, each kept until its own expiry (finding 2).
# Counts from before are kept under the issuer '' (unknown): they count against a ticket of
# that id from any issuer, which errs on the side of refusing. The held format 1 list stays
# in revocation_list; the gateway carries its entries over when it starts.
_V4 = """
CREATE TABLE ticket_use_v4 (
    issuer      TEXT NOT NULL,
    ticket_id   TEXT NOT NULL,
    uses        INTEGER NOT NULL CHECK (uses >= 0),
    max_uses    INTEGER NOT NULL CHECK (max_uses >= 1),
    last_ms     INTEGER NOT NULL,
    PRIMARY KEY (issuer, ticket_id)
) WITHOUT ROWID;
INSERT INTO ticket_use_v4 (issuer, ticket_id, uses, max_uses, last_ms)
    SELECT '', ticket_id, uses, max_uses, last_ms FROM ticket_use;
DROP TABLE ticket_use;
ALTER TABLE ticket_use_v4 RENAME TO ticket_use;
CREATE TABLE revocation_entry (
    kind        TEXT NOT NULL CHECK (kind IN ('jti', 'sub', 'keys')),
    value       TEXT NOT NULL,
    until_ms    INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
) WITHOUT ROWID;
CREATE TRIGGER revocation_entry_only_extended BEFORE UPDATE ON revocation_entry
WHEN NEW.until_ms < OLD.until_ms OR NEW.kind IS NOT OLD.kind OR NEW.value IS NOT OLD.value
BEGIN SELECT RAISE(ABORT, 'a revocation is only ever extended'); END;
CREATE TRIGGER revocation_entry_kept BEFORE DELETE ON revocation_entry
WHEN OLD.until_ms >= (SELECT time_ms FROM time_floor WHERE singleton = 1)
BEGIN SELECT RAISE(ABORT, 'a revocation is kept until it expires'); END;
"""


def _audit_commitment_migration() -> str:
    """Plaintext commitments (issue 12; docs/audit-log.md, "What is shown is what is signed").

    Kept in a function of its own so it can be renumbered beside other migrations at a merge.
    Existing entries are not rewritten (their leaves are signed): sealed entries before
    ``from_index`` stay in leaf format 1, which still verifies but whose plaintext only the
    owner's key can check; every sealed entry from ``from_index`` on is in format 2. The row
    is written when the store first opens with its commitment key; ``key_id`` names that key
    so a wrong or replaced key file is refused instead of silently failing every row.
    """
    return """
CREATE TABLE audit_commitment_key (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    key_id      BLOB NOT NULL CHECK (length(key_id) = 8),
    from_index  INTEGER NOT NULL CHECK (from_index >= 0)
);
CREATE TRIGGER audit_commitment_key_no_update BEFORE UPDATE ON audit_commitment_key
BEGIN SELECT RAISE(ABORT, 'the commitment key is set once'); END;
CREATE TRIGGER audit_commitment_key_no_delete BEFORE DELETE ON audit_commitment_key
BEGIN SELECT RAISE(ABORT, 'the commitment key is set once'); END;
"""


# v6: how far each outage journal was replayed (store/outage_journal.py), so a crash between
# a replay's commit and the journal's wipe replays nothing twice.
_V6 = """
CREATE TABLE outage_replay (
    journal_id   TEXT PRIMARY KEY,
    applied_seq  INTEGER NOT NULL CHECK (applied_seq >= 1),
    replayed_ms  INTEGER NOT NULL
);
CREATE TRIGGER outage_replay_forward BEFORE UPDATE OF applied_seq ON outage_replay
WHEN NEW.applied_seq <= OLD.applied_seq
BEGIN SELECT RAISE(ABORT, 'an outage journal is replayed forward only'); END;
"""


def _owner_devices_migration() -> str:
    """The owner's devices (passkeys) and their one-time enrollment links (docs/owner-app.md).

    Kept in a function of its own so it can be renumbered beside other migrations at a merge.
    A link is stored as the SHA-256 of its secret, so the database never holds a usable link;
    a device is never deleted (``revoked_ms`` is set), so the audit log's device ids always
    resolve.
    """
    return """
CREATE TABLE owner_enrollment (
    token_hash  BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
    role        TEXT NOT NULL CHECK (role IN ('owner', 'member')),
    name        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    used_ms     INTEGER,
    device_id   TEXT
);
CREATE TRIGGER owner_enrollment_used_once BEFORE UPDATE ON owner_enrollment
WHEN OLD.used_ms IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'an enrollment link is used once'); END;
CREATE TABLE owner_device (
    device_id     TEXT PRIMARY KEY,
    credential_id BLOB NOT NULL UNIQUE,
    public_key    BLOB NOT NULL,
    sign_count    INTEGER NOT NULL CHECK (sign_count >= 0),
    role          TEXT NOT NULL CHECK (role IN ('owner', 'member')),
    name          TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    last_used_ms  INTEGER,
    revoked_ms    INTEGER
);
CREATE TRIGGER owner_device_stays_revoked BEFORE UPDATE ON owner_device
WHEN OLD.revoked_ms IS NOT NULL AND NEW.revoked_ms IS NOT OLD.revoked_ms
BEGIN SELECT RAISE(ABORT, 'a revoked device stays revoked'); END;
CREATE TRIGGER owner_device_no_delete BEFORE DELETE ON owner_device
BEGIN SELECT RAISE(ABORT, 'owner devices are revoked, never deleted'); END;
"""


def _owner_device_may_open_migration() -> str:
    """A member device the owner allowed to open doors (docs/owner-app.md, "Roles").

    Kept in a function of its own so it can be renumbered beside other migrations at a merge.
    0 for every device that exists: an owner device opens doors by its role, a member's
    permission is given later, by the owner, and recorded in the audit log.
    """
    return """
ALTER TABLE owner_device ADD COLUMN may_open INTEGER NOT NULL DEFAULT 0
    CHECK (may_open IN (0, 1));
"""


def _checkpoint_note_migration() -> str:
    """C2SP checkpoints (issue 12; store/checkpoint.py, docs/audit-log.md "Checkpoints").

    Kept in a function of its own so it can be renumbered beside other migrations at a merge.
    A checkpoint row with a ``note_key_id`` is a ``tlog-checkpoint`` signed note (origin
    ``threshold.example/gw/<id>``, ``time_ms`` not signed); rows from before keep NULL and
    stay ``threshold-checkpoint/v1``, which still verifies. Nothing is rewritten. A
    cosignature of a note checkpoint is a ``tlog-cosignature`` line (key ID, timestamp,
    signature); ``witness`` is the cosigner's key name.
    """
    return """
ALTER TABLE checkpoint ADD COLUMN note_key_id BLOB
    CHECK (note_key_id IS NULL OR length(note_key_id) = 4);
"""


def _visitor_invitations_migration() -> str:
    """The owner's invitations of visitors, keys for people (docs/visitors.md).

    Kept in a function of its own so it can be renumbered beside other migrations at a merge.
    The link is stored as the SHA-256 of its secret; it is claimed once (the visitor's public
    key is written once, a trigger refuses a second); an invitation is never deleted
    (``revoked_ms`` is set), so the audit log's invitation ids always resolve.
    """
    return """
CREATE TABLE visitor_invitation (
    invitation_id   TEXT PRIMARY KEY,
    token_hash      BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    terms           TEXT NOT NULL,
    invited_by      TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    link_expires_ms INTEGER NOT NULL,
    ends_ms         INTEGER NOT NULL,
    holder_key      BLOB CHECK (holder_key IS NULL OR length(holder_key) = 32),
    claimed_ms      INTEGER,
    revoked_ms      INTEGER
);
CREATE UNIQUE INDEX visitor_invitation_holder ON visitor_invitation (holder_key)
    WHERE holder_key IS NOT NULL;
CREATE TRIGGER visitor_invitation_claimed_once BEFORE UPDATE OF holder_key ON visitor_invitation
WHEN OLD.holder_key IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'an invitation is claimed once'); END;
CREATE TRIGGER visitor_invitation_revoked_stays BEFORE UPDATE OF revoked_ms ON visitor_invitation
WHEN OLD.revoked_ms IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a revoked invitation stays revoked'); END;
"""


def _push_subscriptions_migration() -> str:
    """The owner's devices' Web Push subscriptions (docs/owner-app.md, "Notifications").

    Kept in a function of its own so it can be renumbered beside other migrations at a merge.
    At most one subscription per device (a device is one browser: subscribing again replaces
    it), with the kinds of notice it wants (a JSON list). The endpoint is a capability (whoever
    holds it can push to the device) and the keys decrypt nothing but are the device's: the
    row is deleted, never kept, when the device unsubscribes, when its push service says the
    subscription is gone (404, 410), and when the device is revoked (the trigger below, so no
    code path can forget it).
    """
    return """
CREATE TABLE push_subscription (
    device_id   TEXT PRIMARY KEY REFERENCES owner_device (device_id),
    endpoint    TEXT NOT NULL UNIQUE CHECK (endpoint LIKE 'https://%'),
    p256dh      BLOB NOT NULL CHECK (length(p256dh) = 65),
    auth        BLOB NOT NULL CHECK (length(auth) = 16),
    kinds       TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
CREATE TRIGGER push_subscription_ends_with_device AFTER UPDATE OF revoked_ms ON owner_device
WHEN NEW.revoked_ms IS NOT NULL
BEGIN DELETE FROM push_subscription WHERE device_id = NEW.device_id; END;
"""


def _upload_schedule_migration() -> str:
    """The paced upload's schedule (docs/privacy.md): the tree size the last closed upload
    slot sealed off (``boundary``; the relay is shown exactly that prefix and a checkpoint
    of it), how many slots have closed, and the size of every slot's checkpoint.

    Kept in a function of its own so it can be renumbered beside other migrations at a merge.
    """
    return """
CREATE TABLE upload_schedule (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    boundary INTEGER NOT NULL CHECK (boundary >= 0),
    slots_closed INTEGER NOT NULL CHECK (slots_closed >= 0),
    closed_ms INTEGER NOT NULL
);
-- The checkpoints the slots signed: the only ones the relay and the witnesses see, and the
-- ones a visitor's receipt is completed with (docs/api.md, "Receipts").
CREATE TABLE scheduled_checkpoint (
    tree_size INTEGER PRIMARY KEY REFERENCES checkpoint (tree_size)
);
"""


MIGRATIONS: tuple[str, ...] = (
    _V1,
    _V2,
    _V3,
    _V4,
    _audit_commitment_migration(),
    _V6,
    _owner_devices_migration(),
    _owner_device_may_open_migration(),
    _checkpoint_note_migration(),
    _visitor_invitations_migration(),
    _push_subscriptions_migration(),
    _upload_schedule_migration(),
)
LATEST_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, target: int = LATEST_VERSION) -> int:
    """Bring the database on ``conn`` (autocommit mode) up to ``target``; return the version.

    Raises ``SchemaTooNew`` for a database written by newer code.
    """
    if not 0 <= target <= LATEST_VERSION:
        raise ValueError(f"no schema version {target}")
    try:
        current = schema_version(conn)
    except sqlite3.Error as exc:
        raise from_sqlite(exc, "read the schema version") from None
    if current > LATEST_VERSION:
        raise SchemaTooNew(
            f"the database is at schema version {current}, but this Threshold knows only up "
            f"to {LATEST_VERSION}; upgrade Threshold or open a copy made for this version"
        )
    for version in range(current + 1, target + 1):
        script = (
            f"BEGIN IMMEDIATE;\n{MIGRATIONS[version - 1]}\n"
            f"PRAGMA user_version = {version};\nCOMMIT;"
        )
        try:
            conn.executescript(script)
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            error: StoreError = from_sqlite(exc, f"migrate to schema version {version}")
            raise error from None
        current = version
    return current
