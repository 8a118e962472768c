"""The per-row work of an import: normalize, render, count, decide the time zone, serialize.

It runs in worker processes for large files, so this module imports neither pandas nor
SQLAlchemy: a worker started fresh loads only what it needs (about 40 MB, not 120).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from campaign.audience.gate import held_reason
from campaign.audience.suppression import SUPPRESSED_REASON
from campaign.audience.windows import WindowPolicy
from campaign.domain import RecipientState, now
from campaign.message import (
    MAX_GSM7_CHARS,
    MAX_UCS2_CHARS,
    UCS2,
    BodyCount,
    MissingMergeValue,
    Template,
    count_body,
    gsm_safe,
    size_problem,
    ucs2_characters,
)
from campaign.phones.normalize import Normalizer, PhoneResult
from campaign.phones.timezones import TimeZoneResolver, TimeZones

# -- the per-chunk work (runs in worker processes for large files) --------------------------------


@dataclass(frozen=True)
class ChunkWork:
    template: str
    gsm_safe: bool
    default_region: str | None
    allow_non_mobile: bool
    # The phone column's name, then its per-row fallbacks' (import --phone-fallback), for notes.
    phone_columns: tuple[str, ...] = ()
    window_policy: str = "none"  # WindowPolicy.spec of the campaign: who is held, and why


_worker_state: dict[str, Any] = {}


def _worker_init(work: ChunkWork) -> None:
    _worker_state["work"] = work
    _worker_state["template"] = Template.parse(work.template)
    _worker_state["normalizer"] = Normalizer(
        work.default_region, allow_non_mobile=work.allow_non_mobile
    )
    _worker_state["zones"] = _Zones(WindowPolicy.from_spec(work.window_policy))


class _Zones:
    """Each row's time zones (one resolver per worker: it caches by prefix) and, when no window
    will ever let the row through, the reason it is held: cached by (zones, country), so a
    million rows cost a few dict lookups each."""

    def __init__(self, policy: WindowPolicy) -> None:
        self.resolver = TimeZoneResolver()
        self.policy = policy
        self.now = now()
        self._held: dict[tuple[str | None, str | None, str | None], str | None] = {}

    def of(self, phone: PhoneResult, cell: object) -> TimeZones:
        """A valid number's zones: the column's when the cell has a value, else the number's."""
        if isinstance(cell, str) and cell.strip():
            return self.resolver.for_column(cell)
        return self.resolver.for_number(phone.e164 or "", phone.country, phone.number_type)

    def held(self, zones: TimeZones, country: str | None) -> str | None:
        key = (zones.key, zones.note if zones.key is None else None, country)
        if key not in self._held:
            self._held[key] = held_reason(zones.key, self.policy, country, self.now, zones.note)
        return self._held[key]


# One ledger row, in the order of LEDGER_COLUMNS: (row, raw_phone, phone, country, fields, state,
# reason, parts, encoding, note, tz_key, tz_source). `state` is None for a row that passed every
# check: the caller decides `pending` or `duplicate`, in file order; its reason, if any, says why
# no window will let it through (it stays pending, held). An invalid row has no phone: the
# report's `phone` is empty when the row is invalid (docs/contract.md), and an invalid row must
# not make a later one a `duplicate`. tz_key None: the zone is unknown (never guessed).
LEDGER_COLUMNS = (
    "row",
    "raw_phone",
    "phone",
    "country",
    "fields",
    "state",
    "reason",
    "parts",
    "encoding",
    "note",  # how the number was found, when that needs saying (a fallback column, a split cell)
    "tz_key",
    "tz_source",
)
RowResult = tuple[
    int,
    str,
    str | None,
    str | None,
    str | None,
    str | None,
    str | None,
    int | None,
    str | None,
    str | None,
    str | None,
    str | None,
]
# (character, source, extra parts) for each character that forces a body into UCS-2.
Finding = tuple[str, str, int]
# Index in the returned rows -> that row's findings. Kept per row so that only the rows that end
# up `pending` (not duplicates) count in the import's UCS-2 totals.
RowFindings = dict[int, list[Finding]]


def process_chunk(
    first_row: int,
    phones: Sequence[Any],
    regions: Sequence[Any] | None,
    fields: dict[str, Sequence[Any]],
    blank: Sequence[bool] | None,
    fallbacks: Sequence[Sequence[Any]] = (),
    zone_cells: Sequence[Any] | None = None,
) -> tuple[list[RowResult], RowFindings]:
    """Normalize, render, count and serialize one chunk: the per-row work that does not depend on
    earlier rows, so it can run in a worker process. `first_row`: the 1-based data row of
    phones[0]; `blank` rows (wholly empty lines) are left out, the numbering still follows the
    file; `fallbacks`: the other phone columns, in order (`_fall_back`); `zone_cells`: the
    --timezone-column's cells. The import's hot path: a static template's rows inline."""
    work: ChunkWork = _worker_state["work"]
    template: Template = _worker_state["template"]
    zoning: _Zones = _worker_state["zones"]
    phone_results, phones = _normalized(phones, regions, fallbacks)
    columns = list(fields)
    findings: RowFindings = {}
    static_count, static_findings = _static_body(template, work.gsm_safe)
    out: list[RowResult] = []
    invalid = RecipientState.INVALID.value
    dumps = json.dumps
    for i, result in enumerate(phone_results):
        if blank is not None and blank[i]:
            continue
        row = first_row + i
        raw = phones[i]
        raw = raw if isinstance(raw, str) else str(raw)
        values = {c: fields[c][i] for c in columns}
        fields_json = dumps(values, ensure_ascii=False) if columns else None
        if result.e164 is None:
            out.append(
                (row, raw, None, result.country, fields_json, invalid, result.reason, *_NONE5)
            )
            continue
        zones = zoning.of(result, zone_cells[i] if zone_cells is not None else None)
        if static_count is not None:
            if static_findings:
                findings[len(out)] = static_findings
            out.append(
                (
                    row,
                    raw,
                    result.e164,
                    result.country,
                    fields_json,
                    None,
                    zoning.held(zones, result.country),
                    static_count.parts,
                    static_count.encoding,
                    result.note,
                    zones.key,
                    zones.source,
                )
            )
            continue
        rendered, found = _rendered_row(row, raw, result, fields_json, values, zones, zoning)
        if found:
            findings[len(out)] = found
        out.append(rendered)
    return out, findings


def _normalized(
    phones: Sequence[Any], regions: Sequence[Any] | None, fallbacks: Sequence[Sequence[Any]]
) -> tuple[list[PhoneResult], Sequence[Any]]:
    """Each row's number normalized (from a fallback column when its own cell has none), and the
    cell each row's number came from."""
    normalizer: Normalizer = _worker_state["normalizer"]
    region_list = [r if r else None for r in regions] if regions is not None else None
    results = normalizer.normalize_many(phones, region_list)
    if fallbacks:
        work: ChunkWork = _worker_state["work"]
        phones = _fall_back(normalizer, results, phones, fallbacks, region_list, work)
    return results, phones


_NONE5 = (
    None,
    None,
    None,
    None,
    None,
)  # parts, encoding, note, tz_key, tz_source of an invalid row


def _static_body(template: Template, safe: bool) -> tuple[BodyCount | None, list[Finding] | None]:
    """A template without fields renders the same body for every row: counted once per chunk.
    (None, None) for a template with fields."""
    if not template.is_static:
        return None, None
    body = template.render({})
    if safe:
        body = gsm_safe(body)
    count = count_body(body)
    return count, _ucs2_findings(template, {}, body, count, safe)


def _rendered_row(
    row: int,
    raw: str,
    result: PhoneResult,
    fields_json: str | None,
    values: Mapping[str, Any],
    zones: TimeZones,
    zoning: _Zones,
) -> tuple[RowResult, list[Finding]]:
    """The ledger row of a valid number with a template that has fields: its own body rendered
    and counted (an empty field without a fallback, or a body too long, makes it invalid)."""
    work: ChunkWork = _worker_state["work"]
    template: Template = _worker_state["template"]
    state, reason, parts, encoding, found = body_verdict(template, values, work.gsm_safe)
    if state is None:
        reason = zoning.held(zones, result.country)
    return (
        row,
        raw,
        result.e164 if state is None else None,
        result.country,
        fields_json,
        state,
        reason,
        parts,
        encoding,
        result.note,
        zones.key,
        zones.source,
    ), found


def _fall_back(
    normalizer: Normalizer,
    results: list[PhoneResult],
    phones: Sequence[Any],
    fallbacks: Sequence[Sequence[Any]],
    regions: Sequence[str | None] | None,
    work: ChunkWork,
) -> list[Any]:
    """Rows whose phone cell is empty or not a mobile number take the first fallback column
    that has one (results changed in place, with a note); returns the cell each row used."""
    used = list(phones)
    first = work.phone_columns[0] if work.phone_columns else "the phone column"
    for i, result in enumerate(results):
        reason = result.reason
        if reason is None or not (reason == "empty" or reason.startswith("not a mobile")):
            continue
        region = regions[i] if regions is not None else None
        tried: str | None = None  # the first fallback that had a number, and why it failed
        for column, cells in enumerate(fallbacks, start=1):
            found = normalizer.normalize(cells[i], region)
            name = work.phone_columns[column] if column < len(work.phone_columns) else "?"
            if found.e164 is not None:
                note = f"phone from {name!r} ({first!r}: {reason})"
                results[i] = replace(
                    found, note=note if found.note is None else f"{note}; {found.note}"
                )
                used[i] = cells[i]
                break
            if tried is None and found.reason != "empty":
                tried = f"{name!r}: {found.reason}"
        else:
            if tried is not None:
                results[i] = replace(result, reason=f"{reason}; fallback {tried}")
    return used


def mark_suppressed(rows: list[RowResult], listed: Mapping[str, str]) -> int:
    """`pending` rows whose number is on the do-not-send list (number -> its reason) become
    `suppressed`, in place; returns how many. Run after de-duplication: a listed number that
    repeats is suppressed once and `duplicate` after."""
    if not listed:
        return 0
    pending = RecipientState.PENDING.value
    suppressed = RecipientState.SUPPRESSED.value
    marked = 0
    for i, row in enumerate(rows):
        reason = listed.get(row[2]) if row[5] == pending and row[2] is not None else None
        if reason is not None:
            rows[i] = (*row[:5], suppressed, SUPPRESSED_REASON + reason, *row[7:])
            marked += 1
    return marked


def body_verdict(
    template: Template, values: Mapping[str, Any], safe: bool
) -> tuple[str | None, str | None, int | None, str | None, list[Finding]]:
    """(state, reason, parts, encoding, UCS-2 findings) of one recipient's message: state is None
    when the body can be sent, `invalid` (with the reason) when not."""
    try:
        body = template.render(values)
    except MissingMergeValue as exc:
        reason = f"empty merge field {{{exc.column}}} and no fallback"
        return RecipientState.INVALID.value, reason, None, None, []
    if safe:
        body = gsm_safe(body)
    counted = count_body(body)
    problem = _body_problem(body, counted)
    if problem:
        return RecipientState.INVALID.value, problem, counted.parts, counted.encoding, []
    found = (
        _ucs2_findings(template, dict(values), body, counted, safe)
        if counted.encoding == UCS2
        else []
    )
    return None, None, counted.parts, counted.encoding, found


def ucs2_totals_rows(totals: Mapping[tuple[Any, ...], list[int]]) -> list[dict[str, Any]]:
    """Rows for the ucs2_characters table from {(..., character, source): [rows, extra parts]}."""
    out = []
    for key, (n, extra) in totals.items():
        row = {"character": key[-2], "source": key[-1], "rows": n, "extra_parts": extra}
        if len(key) == 3:
            row["import_id"] = key[0]
        out.append(row)
    return out


def _body_problem(body: str, counted: BodyCount) -> str | None:
    """Why the service would refuse this row's rendered body, or None. Reasons start with a
    short kind before the colon: the import summary groups rows by it."""
    if not body or body.isspace():
        return "message empty: every field in it is empty for this row"
    if size_problem(body, count=counted):
        limit = MAX_UCS2_CHARS if counted.encoding == UCS2 else MAX_GSM7_CHARS
        return (
            f"message too long: {counted.units} {counted.encoding} characters once filled in "
            f"(the service takes at most {limit})"
        )
    return None


def _ucs2_findings(
    template: Template, values: dict[str, Any], body: str, counted: BodyCount, safe: bool
) -> list[Finding]:
    """(character, source, extra parts) for each character that forces this body into UCS-2."""
    if counted.encoding != UCS2:
        return []
    chars = ucs2_characters(body)
    if not chars:
        return []
    # Parts the row would take if those characters were GSM-7: what they cost.
    gsm_parts = count_body("".join("?" if c in chars else c for c in body)).parts
    extra = counted.parts - gsm_parts
    findings: list[Finding] = []
    literal = gsm_safe(template.literal_text) if safe else template.literal_text
    for char in chars:
        sources = []
        if char in literal:
            sources.append("template")
        for column, value in values.items():
            if isinstance(value, str) and char in (gsm_safe(value) if safe else value):
                sources.append(f"column:{column}")
        for source in sources or ["template"]:
            findings.append((char, source, extra))
    return findings
