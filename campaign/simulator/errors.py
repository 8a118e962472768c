"""The simulator's error responses: an exception per refusal, shaped like the service's own.

Validation and the account model raise `ApiError`; the server turns it into the wire format
(`__type`, HTTP status: see server.error_body). Kept apart so that neither of them imports the
HTTP layer.
"""

from __future__ import annotations

from typing import Any

# Exceptions SendTextMessage can raise (service model), usable in reject_destinations.
SEND_EXCEPTIONS = frozenset(
    {
        "ServiceQuotaExceededException",
        "ThrottlingException",
        "AccessDeniedException",
        "ResourceNotFoundException",
        "ValidationException",
        "ConflictException",
        "InternalServerException",
    }
)


class ApiError(Exception):
    """An error response of the service: botocore maps `name` to client.exceptions.<name>."""

    def __init__(self, name: str, message: str, *, status: int = 400, **members: Any) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.status = status
        # Modeled members (Reason, Fields, ResourceType, ...); None means "not in this answer".
        self.members = {k: v for k, v in members.items() if v is not None}


def validation_error(
    reason: str, fields: list[tuple[str, str]], message: str | None = None
) -> ApiError:
    """A ValidationException listing every violated rule in Fields, as the service does."""
    text = message or "; ".join(f"{name}: {msg}" for name, msg in fields) or reason
    return ApiError(
        "ValidationException",
        text,
        Reason=reason,
        Fields=[{"Name": name, "Message": msg} for name, msg in fields],
    )
