"""Cloud sync: the background task that delivers the sealed log to the relay, its
schedule, and what it does with the owner's mail and the relay's signed time."""
