"""The pure trust layer: tokens (PASETO), tickets, certificates, revocations, approvals,
proofs of possession, schedules, the clock rule, request signatures and sealing. No I/O."""
