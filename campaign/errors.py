"""The root of every error a user can cause. The CLI turns it into one `Error: ...` line, exit 1."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; str() is one clear line."""
