"""Remote reach: the gateway's outbound tunnel to the relay's SNI front, and the certificate
for its remote name (docs/remote.md)."""
