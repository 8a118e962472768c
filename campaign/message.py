"""Message templates, GSM-7/UCS-2 encoding and part counting.

Parts are what AWS End User Messaging SMS paces (MPS) and prices, so `count_body` is the single
place that counts them (docs/aws-facts.md, "Message parts"):

- GSM 03.38 text (GSM-7): up to 160 septets in one part, otherwise parts of 153 septets. The
  extension characters ``^ { } \\ [ ] ~ | €`` and form feed are an escape plus a character,
  2 septets, and an escape sequence is never split across two parts.
- Anything outside GSM 03.38 makes the whole body UCS-2: up to 70 UTF-16 code units in one part,
  otherwise parts of 67. A character outside the Basic Multilingual Plane (most emoji) is a
  surrogate pair, 2 units, and a pair is never split across two parts.

"Characters" in the service's length limits (1600 GSM / 630 UCS-2) are counted in the same units:
septets for GSM-7, UTF-16 code units for UCS-2. That is what the encoded message is made of, so it
is the reading that cannot let a body through that the service would refuse.

Import renders and counts a million bodies, so `Template.render` and `count_body` keep their
common case to a few C-level calls (a precompiled list of pieces; one bytes.translate).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# The service's MessageBody limits, in septets (GSM-7) and UTF-16 code units (UCS-2).
MAX_GSM7_CHARS = 1600
MAX_UCS2_CHARS = 630

GSM7_SINGLE_PART = 160
GSM7_PER_PART = 153  # 7 of the 140 bytes carry the header that reassembles the parts
UCS2_SINGLE_PART = 70
UCS2_PER_PART = 67

# The GSM 03.38 default alphabet in code order, 16 code points a row; index == code point.
# 0x1B is the escape to the extension table, not a character: it is left out of the sets below.
_GSM_DEFAULT_ALPHABET = (
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00  ($ is 0x02; 0x09 is capital C cedilla)
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"  # 0x10  (Greek capitals, not Latin look-alikes)
    " !\"#¤%&'()*+,-./"  # 0x20  (0x24 is the currency sign ¤, not $)
    "0123456789:;<=>?"  # 0x30
    "¡ABCDEFGHIJKLMNO"  # 0x40
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50
    "¿abcdefghijklmno"  # 0x60
    "pqrstuvwxyzäöñüà"  # 0x70
)
GSM_BASIC: frozenset[str] = frozenset(_GSM_DEFAULT_ALPHABET) - {"\x1b"}
# Reached through the escape: 2 septets each. Form feed is the extension table's page break.
GSM_EXTENSION: frozenset[str] = frozenset("\x0c^{}\\[]~|€")
GSM_CHARACTERS: frozenset[str] = GSM_BASIC | GSM_EXTENSION


def _char_class(chars: Iterable[str], *, negate: bool = False) -> str:
    return ("[^" if negate else "[") + "".join(re.escape(c) for c in sorted(chars)) + "]"


# ASCII bodies (the common case) are checked on bytes: deleting every one-septet GSM byte leaves
# exactly the bytes that need a closer look, in one C-level pass.
_PLAIN_GSM_ASCII = bytes(c for c in range(128) if chr(c) in GSM_BASIC)
_EXTENSION_ASCII = bytes(ord(c) for c in GSM_EXTENSION if c.isascii())
# Other bodies go through regexes: the first character that is not one septet, the first outside
# GSM 03.38 (None: GSM-7), and the 2-unit characters, whose positions matter when a body is split.
_find_not_basic_gsm = re.compile(_char_class(GSM_BASIC, negate=True)).search
_NOT_GSM_RE = re.compile(_char_class(GSM_CHARACTERS, negate=True))
_find_not_gsm = _NOT_GSM_RE.search
_GSM_EXTENSION_RE = re.compile(_char_class(GSM_EXTENSION))
_SURROGATE_PAIR_RE = re.compile("[\U00010000-\U0010ffff]")  # one Python char, 2 UTF-16 units


# -- part counting ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BodyCount:
    """How a body travels: its encoding, its length in that encoding's units, and its parts."""

    encoding: str  # GSM7 or UCS2
    units: int  # septets for GSM-7 (extension characters count 2), UTF-16 code units for UCS-2
    parts: int  # 0 for an empty body: there is nothing to send (and the service refuses it)
    characters: int  # len(body): characters as Python (and the user) sees them


def _simple_parts(units: int, single: int, per_part: int) -> int:
    """Parts when every character is one unit, so nothing can straddle a part boundary."""
    if units <= single:
        return 1 if units else 0
    return -(-units // per_part)


def _packed_parts(
    body: str, units: int, doubles: re.Pattern[str], single: int, per_part: int
) -> int:
    """Parts when the 2-unit characters matched by `doubles` (escape sequences, surrogate pairs)
    may not be split: one that would straddle a boundary starts the next part instead."""
    if units <= single:
        return 1
    padding = 0  # units left empty at the end of parts, so far
    for earlier_doubles, match in enumerate(doubles.finditer(body)):
        offset = match.start() + earlier_doubles + padding
        if offset % per_part == per_part - 1:  # its first unit would be the last of a part
            padding += 1
    return -(-(units + padding) // per_part)


# A BodyCount is immutable and building a frozen dataclass costs about a microsecond, so equal
# counts are shared: prebuilt for bodies of one-unit characters (nearly all of them, indexed by
# length), remembered for the rest. The memo is capped so that odd input cannot grow it forever.
_PLAIN_GSM7_COUNTS = tuple(
    BodyCount(GSM7, n, _simple_parts(n, GSM7_SINGLE_PART, GSM7_PER_PART), n)
    for n in range(MAX_GSM7_CHARS + 1)
)
_PLAIN_UCS2_COUNTS = tuple(
    BodyCount(UCS2, n, _simple_parts(n, UCS2_SINGLE_PART, UCS2_PER_PART), n)
    for n in range(MAX_UCS2_CHARS + 1)
)
_SHARED_COUNTS: dict[tuple[str, int, int, int], BodyCount] = {}
_SHARED_COUNTS_MAX = 10_000


def _shared_count(encoding: str, units: int, parts: int, characters: int) -> BodyCount:
    key = (encoding, units, parts, characters)
    counted = _SHARED_COUNTS.get(key)
    if counted is None:
        counted = BodyCount(encoding, units, parts, characters)
        if len(_SHARED_COUNTS) < _SHARED_COUNTS_MAX:
            _SHARED_COUNTS[key] = counted
    return counted


def _gsm7_count(body: str, characters: int, extension_chars: int) -> BodyCount:
    if not extension_chars:
        if characters <= MAX_GSM7_CHARS:
            return _PLAIN_GSM7_COUNTS[characters]
        parts = _simple_parts(characters, GSM7_SINGLE_PART, GSM7_PER_PART)
        return BodyCount(GSM7, characters, parts, characters)
    septets = characters + extension_chars
    parts = _packed_parts(body, septets, _GSM_EXTENSION_RE, GSM7_SINGLE_PART, GSM7_PER_PART)
    return _shared_count(GSM7, septets, parts, characters)


def _ucs2_count(body: str, characters: int, units: int) -> BodyCount:
    if units == characters:
        if characters <= MAX_UCS2_CHARS:
            return _PLAIN_UCS2_COUNTS[characters]
        parts = _simple_parts(characters, UCS2_SINGLE_PART, UCS2_PER_PART)
        return BodyCount(UCS2, units, parts, characters)
    parts = _packed_parts(body, units, _SURROGATE_PAIR_RE, UCS2_SINGLE_PART, UCS2_PER_PART)
    return _shared_count(UCS2, units, parts, characters)


def count_body(body: str) -> BodyCount:
    """Encoding, units and parts of a message body, as the service counts them for MPS and price."""
    characters = len(body)
    if body.isascii():
        special = body.encode("ascii").translate(None, _PLAIN_GSM_ASCII)
        if not special:
            return _gsm7_count(body, characters, 0)
        if not special.translate(None, _EXTENSION_ASCII):  # only ^ { } \ [ ] ~ | and form feed
            return _gsm7_count(body, characters, len(special))
        return _ucs2_count(body, characters, characters)  # e.g. ` or a tab: ASCII is all BMP
    first_special = _find_not_basic_gsm(body)
    if first_special is None:
        return _gsm7_count(body, characters, 0)
    start = first_special.start()  # everything before it is plain GSM: no need to scan it again
    if _find_not_gsm(body, start) is None:
        return _gsm7_count(body, characters, len(_GSM_EXTENSION_RE.findall(body, start)))
    # surrogatepass: a lone surrogate (from a badly decoded file) still counts as one unit.
    units = len(body.encode("utf-16-le", "surrogatepass")) // 2
    return _ucs2_count(body, characters, units)


def parts_for(body: str) -> tuple[int, str]:
    """(parts, encoding) of a message body."""
    counted = count_body(body)
    return counted.parts, counted.encoding


def ucs2_characters(text: str) -> list[str]:
    """The characters of `text` outside GSM 03.38 (each forces UCS-2), once each, in order."""
    return list(dict.fromkeys(_NOT_GSM_RE.findall(text)))


def size_problem(body: str, *, count: BodyCount | None = None) -> str | None:
    """None if the service would accept the body's length, else a one-line reason.

    Pass `count` when the body was already counted, to avoid counting it twice.
    """
    if not body:
        return "message body is empty"
    if body.isspace():
        return "message body is only whitespace"
    counted = count if count is not None else count_body(body)
    if counted.encoding == GSM7 and counted.units > MAX_GSM7_CHARS:
        return (
            f"message is {counted.units} GSM-7 characters (extension characters such as € "
            f"count 2); the service takes at most {MAX_GSM7_CHARS}"
        )
    if counted.encoding == UCS2 and counted.units > MAX_UCS2_CHARS:
        forcing = " ".join(repr(c) for c in ucs2_characters(body)[:5])
        return (
            f"message is {counted.units} UCS-2 characters (emoji count 2; UCS-2 because of "
            f"{forcing}); the service takes at most {MAX_UCS2_CHARS}"
        )
    return None


# -- GSM-safe replacements -------------------------------------------------------------------------

# Characters that look like a GSM-7 character (or like nothing at all) but force the whole message
# into UCS-2, doubling its parts. Only typographic variants: letters are never changed, and
# symbols with no GSM look-alike (™ ® © emoji) are left alone rather than spelled out.
GSM_LOOKALIKES: Mapping[str, str] = MappingProxyType(
    {
        # single quotes, apostrophes, accents used as apostrophes, primes
        "\u2018": "'",  # ‘ left single quotation mark
        "\u2019": "'",  # ’ right single quotation mark (the typographic apostrophe)
        "\u201a": "'",  # ‚ single low-9 quotation mark
        "\u201b": "'",  # ‛ single high-reversed-9 quotation mark
        "\u2032": "'",  # ′ prime
        "\u00b4": "'",  # ´ acute accent
        "`": "'",  # grave accent: ASCII, but not in GSM 03.38
        # double quotes
        "\u201c": '"',  # “ left double quotation mark
        "\u201d": '"',  # ” right double quotation mark
        "\u201e": '"',  # „ double low-9 quotation mark
        "\u201f": '"',  # ‟ double high-reversed-9 quotation mark
        "\u2033": '"',  # ″ double prime
        "\u00ab": '"',  # « left guillemet
        "\u00bb": '"',  # » right guillemet
        # dashes, hyphens, minus, bullet
        "\u2010": "-",  # ‐ hyphen
        "\u2011": "-",  # ‑ non-breaking hyphen
        "\u2012": "-",  # ‒ figure dash
        "\u2013": "-",  # – en dash
        "\u2014": "-",  # — em dash
        "\u2015": "-",  # ― horizontal bar
        "\u2212": "-",  # − minus sign
        "\u2022": "-",  # • bullet
        "\u2026": "...",  # … horizontal ellipsis
        # spaces that are not U+0020
        "\t": " ",  # tab: not in GSM 03.38
        "\u00a0": " ",  # no-break space
        "\u2000": " ",  # en quad
        "\u2001": " ",  # em quad
        "\u2002": " ",  # en space
        "\u2003": " ",  # em space
        "\u2004": " ",  # three-per-em space
        "\u2005": " ",  # four-per-em space
        "\u2006": " ",  # six-per-em space
        "\u2007": " ",  # figure space
        "\u2008": " ",  # punctuation space
        "\u2009": " ",  # thin space
        "\u200a": " ",  # hair space
        "\u202f": " ",  # narrow no-break space
        "\u205f": " ",  # medium mathematical space
        "\u3000": " ",  # ideographic space
        # invisible characters: dropped (not U+200D, the zero-width joiner: emoji are built with it)
        "\u200b": "",  # zero-width space
        "\u2060": "",  # word joiner
        "\ufeff": "",  # byte order mark / zero-width no-break space, often left by spreadsheets
        "\u00ad": "",  # soft hyphen
    }
)
_LOOKALIKE_RE = re.compile(_char_class(GSM_LOOKALIKES))


def gsm_safe(text: str) -> str:
    """`text` with GSM_LOOKALIKES replaced, so that punctuation alone does not force UCS-2.

    NFC first: a letter typed as base + combining accent (as macOS files often hold them) becomes
    the single precomposed letter, which GSM 03.38 may have (é, ñ, Ä). NFC only joins canonically
    equivalent forms, so nothing visible changes.
    """
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    # One str.replace per distinct look-alike present: str.translate looks every character of
    # a non-ASCII string up in a dict, several times slower on message-sized text.
    for lookalike in dict.fromkeys(_LOOKALIKE_RE.findall(text)):
        text = text.replace(lookalike, GSM_LOOKALIKES[lookalike])
    return text


# -- templates -------------------------------------------------------------------------------------


class TemplateError(ValueError):
    """A malformed message template; the message is one line that says where."""


class MissingMergeValue(ValueError):
    """A field's column is empty for this row and the field has no fallback."""

    column: str

    def __init__(self, column: str) -> None:
        super().__init__(f"column {column!r} is empty and its field has no fallback")
        self.column = column

    def __reduce__(self) -> tuple[type[MissingMergeValue], tuple[str]]:
        # Import renders in worker processes: unpickle with the column, not the message.
        return (type(self), (self.column,))


def normalize_column_name(name: str) -> str:
    """How column names are compared: case-insensitively, ignoring surrounding spaces."""
    return name.strip().casefold()


def _cell_text(value: object) -> str | None:
    """A cell as text, or None when it is empty (None, blank, NaN, pandas' NA or NaT)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value if value and not value.isspace() else None
    try:
        if value != value:  # NaN and NaT are not equal to themselves
            return None
    except TypeError:  # pandas.NA refuses to be a truth value; it is missing by definition
        return None
    text = str(value)
    return text if text and not text.isspace() else None


# (index of the slot in the pieces, normalized column, fallback or None)
_Slot = tuple[int, str, str | None]


def _compile(text: str) -> tuple[tuple[str, ...], tuple[_Slot, ...]]:
    """Split a template into literal pieces and field slots; raise TemplateError if malformed."""
    pieces: list[str] = []
    slots: list[_Slot] = []
    literal: list[str] = []
    i, end = 0, len(text)
    while i < end:
        char = text[i]
        if char == "{":
            if text.startswith("{", i + 1):
                literal.append("{")
                i += 2
                continue
            close = text.find("}", i + 1)
            if close < 0:
                raise TemplateError(
                    f"'{{' at character {i + 1} is never closed "
                    "(end the field with '}', or write '{{' for a literal brace)"
                )
            nested = text.find("{", i + 1, close)
            if nested >= 0:
                raise TemplateError(
                    f"'{{' at character {nested + 1} is inside the field opened at character "
                    f"{i + 1} (fields do not nest; write '{{{{' outside a field for a literal "
                    "brace)"
                )
            column, bar, fallback = text[i + 1 : close].partition("|")
            name = normalize_column_name(column)
            if not name:
                raise TemplateError(
                    f"the field at character {i + 1} names no column "
                    "(write {column} or {column|fallback}; '{{' for a literal brace)"
                )
            pieces.append("".join(literal))
            literal.clear()
            slots.append((len(pieces), name, fallback if bar else None))
            pieces.append("")  # the slot render fills in
            i = close + 1
        elif char == "}":
            if text.startswith("}", i + 1):
                literal.append("}")
                i += 2
                continue
            raise TemplateError(
                f"'}}' at character {i + 1} closes no field (write '}}}}' for a literal brace)"
            )
        else:
            # Copy the run of ordinary text up to the next brace in one slice.
            brace = min((p for p in (text.find("{", i), text.find("}", i)) if p >= 0), default=end)
            literal.append(text[i:brace])
            i = brace
    pieces.append("".join(literal))
    return tuple(pieces), tuple(slots)


@dataclass(frozen=True)
class Template:
    """A message template: `{column}` inserts a CSV column, `{column|fallback}` uses the fallback
    when the cell is empty, `{{` and `}}` are literal braces.

    Column names are matched case-insensitively with surrounding spaces ignored; the fallback is
    everything after the first `|`, taken verbatim (so `{title|}` drops an empty title). Values are
    inserted as they are in the file. Constructing a Template validates it (TemplateError).
    """

    source: str
    _pieces: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _slots: tuple[_Slot, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pieces, slots = _compile(self.source)
        # Frozen dataclass: the precompiled form is set once, here.
        object.__setattr__(self, "_pieces", pieces)
        object.__setattr__(self, "_slots", slots)

    @classmethod
    def parse(cls, text: str) -> Template:
        return cls(text)

    @property
    def columns(self) -> tuple[str, ...]:
        """Normalized column names the template uses, in order of first use, each once."""
        return tuple(dict.fromkeys(column for _, column, _ in self._slots))

    @property
    def required_columns(self) -> tuple[str, ...]:
        """The columns used at least once without a fallback: a file must have them
        (docs/contract.md)."""
        return tuple(dict.fromkeys(column for _, column, fb in self._slots if fb is None))

    @property
    def literal_text(self) -> str:
        """The template's own text without its fields (braces unescaped); fallbacks excluded."""
        return "".join(self._pieces)

    @property
    def is_static(self) -> bool:
        """No fields: every recipient gets the same body."""
        return not self._slots

    def render(self, values: Mapping[str, object]) -> str:
        """The body for one row. `values` is keyed by normalized column name; a column that is
        absent counts as empty. Raises MissingMergeValue for an empty value with no fallback."""
        if not self._slots:
            return self._pieces[0]
        pieces = list(self._pieces)
        for slot, column, fallback in self._slots:
            value = values.get(column)
            # Fast path: a non-blank string, which is nearly every cell of a CSV read as text.
            if type(value) is str and value and not value.isspace():
                pieces[slot] = value
                continue
            text = _cell_text(value)
            if text is None:
                if fallback is None:
                    raise MissingMergeValue(column)
                text = fallback
            pieces[slot] = text
        return "".join(pieces)
