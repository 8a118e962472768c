"""Numbers for the do-not-send list, normalized exactly as an import normalizes them.

A suppressed number must match the ledger's E.164 text byte for byte, so the list goes through
the importer's own `Normalizer`. Every valid number is accepted, not only SMS-capable ones: a
landline on the list is harmless, and a campaign imported with `--allow-non-mobile` may hold it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from campaign.errors import UserError

__all__ = ["SUPPRESSED_REASON", "NormalizedList", "SuppressionError", "normalize_list"]

# The reason of a recipient found on the list (at import or at claim time): + the list's reason.
SUPPRESSED_REASON = "on the do-not-send list: "


class SuppressionError(UserError, ValueError):
    """A do-not-send list input that can't be used; the message names the option."""


@dataclass(frozen=True, slots=True)
class NormalizedList:
    numbers: tuple[str, ...]  # E.164, in first-seen order, each once
    rejected: tuple[tuple[int, str, str], ...]  # (row, the cell as written, why not a number)
    repeats: int  # cells that were a number already in `numbers`
    empty: int  # empty cells, skipped


def normalize_list(
    raws: Iterable[object],
    default_region: str | None = None,
    rows: Sequence[int] | None = None,
) -> NormalizedList:
    """Normalize numbers for the do-not-send list; `default_region` (`--default-region`) reads
    numbers written without their country code. A rejected cell is reported with its row:
    `rows[i]` (the file's data row number) or its 1-based position among `raws`."""
    # Loaded here: the ledger reads SUPPRESSED_REASON, and a command that never normalizes a
    # number must not pay for phonenumbers' metadata.
    from campaign.phones.normalize import Normalizer

    try:
        normalizer = Normalizer(default_region, allow_non_mobile=True)
    except ValueError as error:
        raise SuppressionError(f"--default-region: {error}") from None
    seen: dict[str, None] = {}
    rejected: list[tuple[int, str, str]] = []
    repeats = empty = 0
    for position, raw in enumerate(raws):
        result = normalizer.normalize(raw)
        if result.e164 is not None:
            if result.e164 in seen:
                repeats += 1
            seen[result.e164] = None
        elif result.reason == "empty":
            empty += 1
        else:
            row = rows[position] if rows is not None else position + 1
            rejected.append((row, str(raw), result.reason or "not a phone number"))
    return NormalizedList(tuple(seen), tuple(rejected), repeats, empty)
