"""Access: the pure session machine and policy, and the async runner that drives a lock
through them, with the ledger (the store) and the camera as its witnesses."""
