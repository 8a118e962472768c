"""Duplicates: each number once per campaign, the first row that has it wins, in file order.

Runs in the importing process, between the workers (which normalize) and the ledger (which
writes), over every number the campaign already has.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import numpy as np

from campaign.domain import RecipientState
from campaign.importing.rows import RowFindings, RowResult


class SeenNumbers:
    """Every E.164 number already in the campaign, as one sorted int64 array: 8 bytes a number
    where a Python set of ints takes about 70, so a million-row import stays well inside its
    memory budget. Each chunk is checked and merged in one vectorized step."""

    def __init__(self, phones: Iterator[str] | set[str]) -> None:
        self._sorted = np.unique(np.fromiter((int(p[1:]) for p in phones), dtype=np.int64))

    def first_seen(self, numbers: list[int]) -> list[bool]:
        """For each number, in order: True when neither known nor earlier in `numbers`
        (and remember it), False for a duplicate."""
        if not numbers:
            return []
        keys = np.asarray(numbers, dtype=np.int64)
        at = np.searchsorted(self._sorted, keys)
        known = np.zeros(len(keys), dtype=bool)
        inside = at < len(self._sorted)
        known[inside] = self._sorted[at[inside]] == keys[inside]
        first = np.zeros(len(keys), dtype=bool)
        first[np.unique(keys, return_index=True)[1]] = True  # first occurrence in this chunk
        new = first & ~known
        if new.any():
            self._sorted = np.sort(np.concatenate((self._sorted, keys[new])), kind="stable")
        return new.tolist()

    def __len__(self) -> int:
        return len(self._sorted)


def decide_duplicates(
    rows: list[RowResult],
    seen: SeenNumbers,
    counters: dict[str, int],
    reasons: Counter[str],
    findings: RowFindings,
    ucs2_totals: dict[tuple[str, str], list[int]],
) -> None:
    """`pending` or `duplicate` for each row that passed its checks, in file order (in place)."""
    pending = RecipientState.PENDING.value
    duplicate = RecipientState.DUPLICATE.value
    candidates = [i for i, row in enumerate(rows) if row[5] is None]
    for row in rows:
        if row[5] is not None:
            counters["invalid"] += 1
            reasons[reason_kind(row[6])] += 1
    verdicts = seen.first_seen([int(rows[i][2][1:]) for i in candidates])  # type: ignore[index]
    for i, is_new in zip(candidates, verdicts, strict=True):
        row = rows[i]
        if not is_new:
            rows[i] = (
                *row[:5],
                duplicate,
                "same number as an earlier row of this campaign",
                *row[7:],
            )
            counters["duplicates"] += 1
            continue
        rows[i] = (*row[:5], pending, *row[6:])
        counters["accepted"] += 1
        for char, source, extra in findings.get(i, ()):
            slot = ucs2_totals.setdefault((char, source), [0, 0])
            slot[0] += 1
            slot[1] += extra


def reason_kind(reason: str | None) -> str:
    """Group reasons for the summary: 'invalid number for GB' and '... for US' stay apart, but
    reasons quoting the raw value are cut at the colon."""
    if not reason:
        return "unknown"
    return reason.split(":", 1)[0]
