"""``threshold demo``: the whole gateway told as a short timeline, with a relay on loopback."""
