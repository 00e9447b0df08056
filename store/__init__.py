"""SQLite storage: one writer, migrations, the tamper-evident audit log and its checkpoints,
and the state that makes offline decisions safe (use counts, challenges, revocations, the
time floor, access sessions, lock pairings, clips, the sync cursor)."""
