"""Which columns of a CRM export an import reads: the phone column (and its per-row fallbacks),
the country column, and the column behind each field of the message (`--map`).

Exports name their phone columns in many ways and often have several: Salesforce `Phone` and
`Mobile`, HubSpot `Phone Number` and `Mobile Phone Number`, Mailchimp `Phone Number` and `SMS Phone
Number`, Google Contacts `Phone 1 - Value`, `Phone 2 - Value`, Outlook `Business Phone`, `Mobile
Phone`, and the same in French, German, Spanish... A header is classified by its words (accents,
case and camelCase ignored) into a preference tier: a column meant for SMS, then a mobile one, then
a plain phone, then one that names a landline (home, work, office). The best tier wins; two
columns in it that differ only by their number (`Phone 1`, `Phone 2`) go by that number; any other
tie is refused with the candidates listed, never settled by column order.

Pure functions: no pandas, no I/O; tested as tables.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from campaign.errors import UserError
from campaign.message import Template, normalize_column_name

# Tiers, best first.
SMS, MOBILE, PHONE, LANDLINE = 0, 1, 2, 3
TIER_NAMES = {SMS: "SMS", MOBILE: "mobile", PHONE: "phone", LANDLINE: "landline"}

# Word starts, after accents are removed and case folded. A word *starting* with one of these
# counts, so compounds match: Handynummer, Mobiltelefon, cellphone, telefonnummer.
_MOBILE_WORDS = (
    "mobil",  # mobile, Mobil, Mobiltelefon, mobilnummer, móvil is below
    "mobiel",  # Dutch
    "cell",  # cell, cellphone, cellular, cellulare (Italian)
    "handy",  # German
    "portable",  # French: téléphone portable
    "movil",  # Spanish: móvil
    "celular",  # Spanish, Portuguese
    "telemovel",  # Portuguese: telemóvel
    "msisdn",
    "gsm",  # Belgian and Dutch usage
    "natel",  # Swiss
    "komorka",  # Polish: komórka
)
_PHONE_WORDS = (
    "phone",
    "telephone",
    "telefon",  # German, Scandinavian, Polish; also telefonnummer
    "telefono",  # Spanish, Italian
    "telefone",  # Portuguese
    "telefoon",  # Dutch
    "tel",  # exact only, see _is_phone_word
    "fon",  # exact only: German "Fon"
    "msisdn",
)
_LANDLINE_WORDS = (
    "home",
    "work",
    "business",
    "office",
    "landline",
    "fixed",
    "fixe",  # French
    "festnetz",  # German
    "privat",  # German (private landline)
    "geschaft",  # German: geschäftlich
    "dienst",  # German: dienstlich
    "buro",  # German: Büro
    "bureau",  # French
    "domicile",  # French
    "trabajo",  # Spanish
    "oficina",  # Spanish
    "casa",  # Spanish, Italian, Portuguese
    "assistant",
    "company",
    "other",
    "main",  # Outlook: Company Main Phone
)
# A column about a phone that is not a phone number: its type, a consent flag, a country code.
_NOT_A_NUMBER_WORDS = frozenset(
    {
        "fax",
        "telefax",
        "type",
        "label",
        "kind",
        "typ",
        "tipo",
        "ext",
        "extension",
        "durchwahl",
        "country",
        "code",
        "status",
        "opt",
        "optin",
        "optout",
        "consent",
        "verified",
        "valid",
        "carrier",
        "date",
        "time",
        "count",
        "subscribed",
        "unsubscribed",
    }
)
# Whole headers that are a phone column although no word above says so.
_WHOLE_PHONE_NAMES = frozenset(
    {
        ("number",),
        ("contact", "number"),
        ("to",),
        ("destination",),
        ("destination", "phone", "number"),
        ("recipient",),
        ("numero",),
        ("nummer",),
    }
)


class ColumnError(UserError):
    """A column cannot be chosen; the message is one line."""


@dataclass(frozen=True)
class Header:
    """A file's header row as written, in order; `positions` are what the rows are indexed by.

    Two columns may have the same name (or differ only in case): they stay two columns here."""

    names: tuple[str, ...]
    file_label: str  # the file as the user knows it, for messages

    def find(self, wanted: str) -> list[int]:
        """Positions of the columns named `wanted`: the exact spelling if one column has it,
        else case-insensitively with surrounding spaces ignored."""
        exact = [i for i, name in enumerate(self.names) if name == wanted]
        if len(exact) == 1:
            return exact
        key = normalize_column_name(wanted)
        return [i for i, name in enumerate(self.names) if normalize_column_name(name) == key]

    def listing(self, limit: int = 20) -> str:
        shown = ", ".join(repr(n) for n in self.names[:limit])
        if len(self.names) > limit:
            shown += f", ... ({len(self.names)} in all)"
        return shown


def words(header: str) -> tuple[str, ...]:
    """A header as lower-case ASCII words and numbers: camelCase split, accents dropped."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", header)
    folded = unicodedata.normalize("NFKD", spaced.casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return tuple(re.findall(r"[a-z]+|[0-9]+", plain))


def _starts(word: str, roots: Sequence[str]) -> bool:
    return any(word.startswith(root) for root in roots)


def _is_phone_word(word: str) -> bool:
    if word in ("tel", "fon"):
        return True
    return _starts(word, [w for w in _PHONE_WORDS if w not in ("tel", "fon")]) or word.endswith(
        "phone"
    )


def phone_tier(header: str) -> int | None:
    """The header's preference tier as a phone column, or None when it is not one."""
    ws = words(header)
    if not ws or any(w in _NOT_A_NUMBER_WORDS for w in ws):
        return None
    mobile = any(_starts(w, _MOBILE_WORDS) for w in ws)
    phone = any(_is_phone_word(w) for w in ws)
    numberish = any(w in ("number", "nummer", "numero", "no", "nr") for w in ws)
    if "sms" in ws or any(w.startswith("sms") and len(w) > 3 for w in ws):
        return SMS if (phone or mobile or numberish) else None
    if mobile:
        return MOBILE
    if phone:
        return LANDLINE if any(_starts(w, _LANDLINE_WORDS) for w in ws) else PHONE
    alpha = tuple(w for w in ws if not w.isdigit())
    return PHONE if alpha in _WHOLE_PHONE_NAMES else None


def _base(header: str) -> tuple[str, ...]:
    """A header without its numbers and Google's `value`: `Phone 1 - Value` -> ('phone',)."""
    return tuple(w for w in words(header) if not w.isdigit() and w != "value")


def _ordinal(header: str) -> int:
    numbers = [int(w) for w in words(header) if w.isdigit()]
    return numbers[0] if numbers else 0


@dataclass(frozen=True)
class PhoneChoice:
    """The phone column (a position in the header) and, in order, the columns a row falls back
    to when its cell is empty or a landline (empty unless asked for)."""

    position: int
    fallbacks: tuple[int, ...] = ()
    why: str = ""  # how it was chosen, for the `phone column:` line


def choose_phone_column(header: Header, wanted: Sequence[str], fallback: bool) -> PhoneChoice:
    """The phone column: the ones the user named (the first is the phone column, the others its
    fallbacks), else the best candidate by name. `fallback` adds the other candidates, best first."""
    if wanted:
        positions = [_named_position(header, name, "--phone-column") for name in wanted]
        if len(set(positions)) != len(positions):
            raise ColumnError("--phone-column names the same column twice")
        extra = _ranked_candidates(header, exclude=positions) if fallback else []
        return PhoneChoice(positions[0], (*positions[1:], *extra), "named with --phone-column")
    ranked = _ranked_candidates(header, exclude=[])
    if not ranked:
        raise ColumnError(
            f"no phone column in {header.file_label}; name it with --phone-column "
            f"(columns: {header.listing()})"
        )
    best_tier = phone_tier(header.names[ranked[0]])
    top = [p for p in ranked if phone_tier(header.names[p]) == best_tier]
    if len(top) > 1 and not _numbered_variants(header, top):
        names = ", ".join(repr(header.names[p]) for p in top)
        raise ColumnError(
            f"{len(top)} columns of {header.file_label} could be the phone column: {names}; "
            f"name one with --phone-column (repeat the option to fall back to the next one "
            "per row)"
        )
    chosen = top[0]
    others = [p for p in ranked if p != chosen]
    label = TIER_NAMES[best_tier] if best_tier is not None else "phone"
    why = f"the best-named {label} column" if others else "the only phone-like column"
    return PhoneChoice(chosen, tuple(others) if fallback else (), why)


def _ranked_candidates(header: Header, exclude: Sequence[int]) -> list[int]:
    """Positions of the phone-like columns, best tier first, then by number, then file order."""
    found = []
    for position, name in enumerate(header.names):
        tier = phone_tier(name)
        if tier is not None and position not in exclude:
            found.append((tier, _ordinal(name), position))
    return [position for _, _, position in sorted(found)]


def _numbered_variants(header: Header, positions: Sequence[int]) -> bool:
    """`Phone 1 - Value`, `Phone 2 - Value`: one name, told apart by distinct numbers."""
    names = [header.names[p] for p in positions]
    ordinals = [_ordinal(n) for n in names]
    return len({_base(n) for n in names}) == 1 and len(set(ordinals)) == len(ordinals)


def _named_position(header: Header, wanted: str, option: str) -> int:
    found = header.find(wanted)
    if not found:
        named = f"{option}{wanted!r}" if option.endswith("=") else f"{option} {wanted!r}"
        raise _missing(header, f"{named}: {header.file_label} has no such column")
    if len(found) > 1:
        names = ", ".join(f"{header.names[p]!r} (column {p + 1})" for p in found)
        raise ColumnError(
            f"{option} {wanted!r} matches {len(found)} columns of {header.file_label}: {names}; "
            "spell it exactly as in the file"
        )
    return found[0]


def named_column(header: Header, wanted: str | None, option: str) -> int | None:
    """The position of the column an option names (an error if missing), or None."""
    return None if wanted is None else _named_position(header, wanted, option)


def _missing(header: Header, problem: str) -> ColumnError:
    return ColumnError(f"{problem} (columns: {header.listing()})")


@dataclass(frozen=True)
class MergeColumns:
    """The column behind each field of the message, and the fields whose column is missing
    (they have a fallback, so every row gets the fallback)."""

    positions: dict[str, int]  # normalized field name -> header position
    missing_with_fallback: tuple[str, ...]


def parse_mappings(pairs: Sequence[str]) -> dict[str, str]:
    """`--map first_name=Prénom` values as {normalized field: column}."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        field, eq, column = pair.partition("=")
        if not eq or not field.strip() or not column.strip():
            raise ColumnError(f"--map {pair!r}: write FIELD=COLUMN, e.g. first_name=Prénom")
        key = normalize_column_name(field)
        if key in mapping:
            raise ColumnError(f"--map gives the field {field.strip()!r} two columns")
        mapping[key] = column.strip()
    return mapping


def merge_columns(header: Header, template: Template, mapping: dict[str, str]) -> MergeColumns:
    """Each template field's column: `--map` first, else the column of the same name.

    docs/contract.md: a field naming a column the file lacks is an error, naming the column, unless
    every use of that field has a fallback: then it is not an error (the caller warns once)."""
    unused = sorted(set(mapping) - set(template.columns))
    if unused:
        raise ColumnError(
            f"--map {unused[0]}=...: the message has no field {{{unused[0]}}} "
            f"(its fields: {', '.join('{' + c + '}' for c in template.columns) or 'none'})"
        )
    positions: dict[str, int] = {}
    missing: list[str] = []
    needs = set(template.required_columns)
    for column in template.columns:
        if column in mapping:
            positions[column] = _named_position(header, mapping[column], f"--map {column}=")
            continue
        found = header.find(column)
        if len(found) == 1:
            positions[column] = found[0]
        elif len(found) > 1:
            names = ", ".join(repr(header.names[p]) for p in found)
            raise ColumnError(
                f"the message's {{{column}}} matches {len(found)} columns of "
                f"{header.file_label} ({names}); choose one with --map {column}=COLUMN"
            )
        elif column in needs:
            raise _missing(
                header,
                f"the message uses {{{column}}} but {header.file_label} has no column "
                f"{column!r} (map one with --map {column}=COLUMN, or give the field a "
                f"fallback: {{{column}|...}})",
            )
        else:
            missing.append(column)
    return MergeColumns(positions, tuple(missing))


__all__ = [
    "ColumnError",
    "Header",
    "MergeColumns",
    "PhoneChoice",
    "choose_phone_column",
    "merge_columns",
    "named_column",
    "parse_mappings",
    "phone_tier",
]
