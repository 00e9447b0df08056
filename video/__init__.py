"""The camera: RTSP ingest on a reader thread, the pre-roll ring, clips, snapshots, motion
and the owner's live view."""
