"""The cloud package's exceptions: one base, typed subclasses with stable codes."""

from __future__ import annotations

from typing import ClassVar


class CloudError(Exception):
    """Base of every deliberate error raised by the cloud relay or its clients."""

    code: ClassVar[str] = "cloud_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RateLimited(CloudError):
    """A client, or everyone together, has used up its budget for a route."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BodyTooLarge(CloudError):
    """A request body is larger than its route accepts."""

    code = "payload_too_large"
