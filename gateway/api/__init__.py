"""The LAN API (aiohttp): routes, problem+json errors, owner request signatures, rate
limits and the mDNS announcement."""
