"""campaign.message: templates, GSM-7/UCS-2 encoding, part counting, GSM-safe replacements."""

from __future__ import annotations

import dataclasses
import pickle
import random

import pytest

from campaign.message import (
    GSM7,
    GSM_BASIC,
    GSM_EXTENSION,
    GSM_LOOKALIKES,
    MAX_GSM7_CHARS,
    MAX_UCS2_CHARS,
    UCS2,
    BodyCount,
    MissingMergeValue,
    Template,
    TemplateError,
    count_body,
    gsm_safe,
    normalize_column_name,
    parts_for,
    size_problem,
    ucs2_characters,
)

EMOJI = "\U0001f600"  # 😀: outside the BMP, a surrogate pair in UTF-16
CYRILLIC = "ж"  # BMP, outside GSM 03.38: one UCS-2 unit


# -- the GSM 03.38 tables --------------------------------------------------------------------------


def test_basic_table_has_127_characters_and_the_right_code_points() -> None:
    # 128 code points minus 0x1B, the escape to the extension table.
    assert len(GSM_BASIC) == 127
    assert "\x1b" not in GSM_BASIC
    # The ones tables most often get wrong: real Greek capitals, ¤ (not $) at 0x24, capital Ç.
    greek = {0x0394, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8, 0x03A3, 0x0398, 0x039E}
    assert {chr(c) for c in greek} <= GSM_BASIC
    assert {"$", "¤", "@", "£", "¥", "§", "¿", "¡", "_", "\n", "\r"} <= GSM_BASIC
    assert set("èéùìòÇØøÅåÆæßÉÄÖÑÜäöñüà") <= GSM_BASIC
    # Not in the basic table: lower-case ç, the grave accent, tab, and the extension characters.
    assert not {"ç", "`", "\t", "€", "^", "{", "|"} & GSM_BASIC


def test_extension_table_is_exactly_the_ten_escaped_characters() -> None:
    assert set("\x0c^{}\\[]~|€") == GSM_EXTENSION


# -- part counting ---------------------------------------------------------------------------------

COUNT_CASES = [
    # body, encoding, units, parts
    pytest.param("", GSM7, 0, 0, id="empty: nothing to send"),
    pytest.param("a" * 160, GSM7, 160, 1, id="160 septets: one part"),
    pytest.param("a" * 161, GSM7, 161, 2, id="161 septets: split into 153-septet parts"),
    pytest.param("a" * 306, GSM7, 306, 2, id="306 = 2 x 153"),
    pytest.param("a" * 307, GSM7, 307, 3, id="307: a third part"),
    pytest.param("a" * 459, GSM7, 459, 3, id="459 = 3 x 153"),
    pytest.param("a" * 460, GSM7, 460, 4, id="460: a fourth part"),
    pytest.param("a" * 158 + "€", GSM7, 160, 1, id="euro takes 2 septets: still 160"),
    pytest.param("a" * 159 + "€", GSM7, 161, 2, id="159 chars + euro = 161 septets"),
    pytest.param("a" * 159 + "{", GSM7, 161, 2, id="same through the ASCII path"),
    pytest.param("a" * 159 + "\x0c", GSM7, 161, 2, id="form feed is an extension char"),
    pytest.param("^{}\\[]~|€", GSM7, 18, 1, id="every extension char counts 2"),
    pytest.param(
        "a" * 152 + "€" + "a" * 152, GSM7, 306, 3, id="escape straddling 153 moves to part 2"
    ),
    pytest.param(
        "a" * 152 + "^" + "a" * 152, GSM7, 306, 3, id="same straddle through the ASCII path"
    ),
    pytest.param("a" * 151 + "€" + "a" * 153, GSM7, 306, 2, id="escape ending at 153 fits"),
    pytest.param("a" * 153 + "€" + "a" * 151, GSM7, 306, 2, id="escape starting part 2 fits"),
    pytest.param("é" * 160, GSM7, 160, 1, id="é is in GSM 03.38"),
    pytest.param("ΔΩñÄ@£$¥", GSM7, 8, 1, id="Greek and Latin-1 GSM letters"),
    pytest.param("line\r\nline", GSM7, 10, 1, id="CR and LF are basic characters"),
    pytest.param(CYRILLIC * 70, UCS2, 70, 1, id="70 UCS-2 units: one part"),
    pytest.param(CYRILLIC * 71, UCS2, 71, 2, id="71: split into 67-unit parts"),
    pytest.param(CYRILLIC * 134, UCS2, 134, 2, id="134 = 2 x 67"),
    pytest.param(CYRILLIC * 135, UCS2, 135, 3, id="135: a third part"),
    pytest.param(EMOJI * 35, UCS2, 70, 1, id="an emoji is 2 units: 35 fill one part"),
    pytest.param(EMOJI * 36, UCS2, 72, 2, id="36 emoji: 72 units"),
    pytest.param(
        CYRILLIC * 66 + EMOJI + CYRILLIC * 66, UCS2, 134, 3, id="emoji straddling 67 is not split"
    ),
    pytest.param(CYRILLIC * 65 + EMOJI + CYRILLIC * 67, UCS2, 134, 2, id="emoji ending at 67 fits"),
    pytest.param("a" * 100 + "’", UCS2, 101, 2, id="one curly quote: UCS-2, 2 parts not 1"),
    pytest.param("“Sale”", UCS2, 6, 1, id="curly double quotes force UCS-2"),
    pytest.param("a`b", UCS2, 3, 1, id="the grave accent is ASCII but not GSM"),
    pytest.param("a\tb", UCS2, 3, 1, id="tab is not GSM"),
    pytest.param("façade", UCS2, 6, 1, id="lower-case ç is not GSM (only Ç is)"),
    pytest.param("€" + CYRILLIC, UCS2, 2, 1, id="in UCS-2 the euro is 1 unit"),
    pytest.param("\ud800" + "a", UCS2, 2, 1, id="a lone surrogate counts 1, no crash"),
]


@pytest.mark.parametrize(("body", "encoding", "units", "parts"), COUNT_CASES)
def test_count_body(body: str, encoding: str, units: int, parts: int) -> None:
    assert count_body(body) == BodyCount(encoding, units, parts, len(body))


def test_characters_are_python_characters_not_units() -> None:
    euros, emoji = count_body("€" * 3), count_body(EMOJI * 2)
    assert (euros.characters, euros.units) == (3, 6)  # GSM-7: an escape + a septet each
    assert (emoji.characters, emoji.units) == (2, 4)  # UCS-2: a surrogate pair each


def test_body_count_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        count_body("hi").parts = 2  # type: ignore[misc]


def test_parts_for_is_count_body_in_short() -> None:
    assert parts_for("a" * 161) == (2, GSM7)
    assert parts_for("It’s") == (1, UCS2)


def _reference_count(body: str) -> tuple[str, int, int]:
    """A plain, slow restatement of the rules: pack units greedily, never splitting a 2-unit char."""
    if all(c in GSM_BASIC or c in GSM_EXTENSION for c in body):
        encoding, single, per_part = GSM7, 160, 153
        widths = [2 if c in GSM_EXTENSION else 1 for c in body]
    else:
        encoding, single, per_part = UCS2, 70, 67
        widths = [2 if ord(c) > 0xFFFF else 1 for c in body]
    units = sum(widths)
    if units <= single:
        return encoding, units, 1 if units else 0
    parts, used = 1, 0
    for width in widths:
        if used + width > per_part:
            parts, used = parts + 1, 0
        used += width
    return encoding, units, parts


@pytest.mark.parametrize(
    "alphabet",
    [
        pytest.param("aaaa€", id="GSM-7, non-ASCII path"),
        pytest.param("aaaa^", id="GSM-7, ASCII path"),
        pytest.param("aé{€", id="GSM-7, mixed"),
        pytest.param(f"{CYRILLIC}{CYRILLIC}{EMOJI}", id="UCS-2 with surrogate pairs"),
        pytest.param(f"a€{EMOJI}", id="UCS-2 with euro and emoji"),
    ],
)
def test_count_body_matches_a_plain_packing_on_random_bodies(alphabet: str) -> None:
    # Lengths around 1-4 parts, so that 2-unit characters land on every boundary sooner or later.
    rng = random.Random(alphabet)
    for _ in range(400):
        body = "".join(rng.choice(alphabet) for _ in range(rng.randrange(50, 480)))
        counted = count_body(body)
        assert (counted.encoding, counted.units, counted.parts) == _reference_count(body), body


# -- UCS-2 characters and size limits --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("plain {GSM} text €5 é", [], id="GSM basic and extension: none"),
        pytest.param("It’s “ok”, it’s", ["’", "“", "”"], id="unique, in order of appearance"),
        pytest.param(f"a{EMOJI}b\u00a0c", [EMOJI, "\u00a0"], id="emoji and no-break space"),
        pytest.param("`ç\t", ["`", "ç", "\t"], id="ASCII and Latin-1 characters outside GSM"),
    ],
)
def test_ucs2_characters(text: str, expected: list[str]) -> None:
    assert ucs2_characters(text) == expected


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param("", "empty", id="empty body"),
        pytest.param(" \n\t ", "whitespace", id="whitespace only"),
        pytest.param("a" * MAX_GSM7_CHARS, None, id="1600 septets: accepted"),
        pytest.param("a" * (MAX_GSM7_CHARS + 1), "1601 GSM-7", id="1601 septets"),
        pytest.param("€" * 800, None, id="800 euros are 1600 septets: accepted"),
        pytest.param("€" * 801, "1602 GSM-7", id="801 euros are 1602 septets"),
        pytest.param(CYRILLIC * MAX_UCS2_CHARS, None, id="630 UCS-2 units: accepted"),
        pytest.param(CYRILLIC * (MAX_UCS2_CHARS + 1), "631 UCS-2", id="631 units"),
        pytest.param(EMOJI * 315, None, id="315 emoji are 630 units: accepted"),
        pytest.param(EMOJI * 316, "632 UCS-2", id="316 emoji are 632 units"),
        pytest.param("’" + "a" * 700, "UCS-2", id="one curly quote makes 701 GSM chars too long"),
    ],
)
def test_size_problem(body: str, problem: str | None) -> None:
    found = size_problem(body)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found and "\n" not in found


def test_size_problem_names_the_characters_that_force_ucs2() -> None:
    found = size_problem("’" + "a" * 700)
    assert found is not None and "'’'" in found


def test_size_problem_uses_a_count_it_is_given() -> None:
    # A caller that already counted the body passes the count instead of counting twice.
    too_long = count_body("a" * 2000)
    assert size_problem("short", count=too_long) is not None
    assert size_problem("a" * 2000, count=count_body("short")) is None


# -- GSM-safe replacements -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("It’s ‘this’ ‚ ‛", "It's 'this' ' '", id="single quotes"),
        pytest.param("“Sale” „now‟", '"Sale" "now"', id="double quotes"),
        pytest.param("«oui» ″", '"oui" "', id="guillemets and double prime"),
        pytest.param("a–b—c‒d―e", "a-b-c-d-e", id="dashes"),
        pytest.param("‐‑−", "---", id="hyphens and minus sign"),
        pytest.param("• item", "- item", id="bullet"),
        pytest.param("wait…", "wait...", id="ellipsis becomes three dots"),
        pytest.param("a\u00a0b\u202fc\u2009d\u2007e", "a b c d e", id="spaces that are not U+0020"),
        pytest.param("a\u200bb\ufeffc\u00add", "abcd", id="invisible characters are dropped"),
        pytest.param("don´t `x`", "don't 'x'", id="acute and grave accents as apostrophes"),
        pytest.param("a\tb", "a b", id="tab"),
        pytest.param("e\u0301 n\u0303 A\u0308", "é ñ Ä", id="decomposed letters are composed"),
    ],
)
def test_gsm_safe_replacements(text: str, expected: str) -> None:
    assert gsm_safe(text) == expected
    assert count_body(expected).encoding == GSM7


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("é è ù ì ò Ç Ø ø Å å Æ æ ß É", id="GSM accented letters"),
        pytest.param("Ä Ö Ñ Ü ä ö ñ ü à ¿ ¡ § ¤ £ ¥", id="more GSM letters and signs"),
        pytest.param("Δ Φ Γ Λ Ω Π Ψ Σ Θ Ξ", id="GSM Greek capitals"),
        pytest.param("€ ^ { } [ ] ~ | \\", id="extension characters"),
        pytest.param("plain text, 100% ASCII!", id="plain ASCII"),
    ],
)
def test_gsm_safe_leaves_gsm_text_alone(text: str) -> None:
    assert gsm_safe(text) == text


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("á í ó ú ç ë", id="letters outside GSM are not transliterated"),
        pytest.param("Прив ™ ® ©", id="no look-alike, left alone"),
        pytest.param("\U0001f468\u200d\U0001f469\u200d\U0001f467", id="emoji ZWJ sequence kept"),
    ],
)
def test_gsm_safe_changes_no_letters_or_symbols(text: str) -> None:
    assert gsm_safe(text) == text


def test_lookalike_table_maps_only_non_gsm_to_gsm() -> None:
    for lookalike, replacement in GSM_LOOKALIKES.items():
        assert lookalike not in GSM_BASIC and lookalike not in GSM_EXTENSION, repr(lookalike)
        assert set(replacement) <= GSM_BASIC, repr(lookalike)


def test_gsm_safe_saves_parts() -> None:
    body = "We’re open – come in…" + "a" * 60
    assert parts_for(body) == (2, UCS2)
    assert parts_for(gsm_safe(body)) == (1, GSM7)


# -- templates -------------------------------------------------------------------------------------

RENDER_CASES = [
    # template, values, rendered body
    pytest.param("Hi {name}!", {"name": "Ann"}, "Hi Ann!", id="plain field"),
    pytest.param("Hi {name|there}", {"name": "Ann"}, "Hi Ann", id="value beats fallback"),
    pytest.param("Hi {name|there}", {"name": ""}, "Hi there", id="empty string: fallback"),
    pytest.param("Hi {name|there}", {"name": "  "}, "Hi there", id="whitespace: fallback"),
    pytest.param("Hi {name|there}", {"name": None}, "Hi there", id="None: fallback"),
    pytest.param("Hi {name|there}", {"name": float("nan")}, "Hi there", id="NaN: fallback"),
    pytest.param("Hi {name|there}", {}, "Hi there", id="absent: fallback"),
    pytest.param("Hi{title| }{name}", {"name": "Ann"}, "Hi Ann", id="fallback is verbatim"),
    pytest.param("{title|}{name}", {"name": "Ann"}, "Ann", id="empty fallback drops the field"),
    pytest.param("{a|x|y}", {}, "x|y", id="fallback is all after the first bar"),
    pytest.param("{{literal}} {x}", {"x": "1"}, "{literal} 1", id="doubled braces"),
    pytest.param("{{{x}}}", {"x": "1"}, "{1}", id="field inside literal braces"),
    pytest.param("Hi { First Name }", {"first name": "Ann"}, "Hi Ann", id="name normalized"),
    pytest.param("{X}{x}", {"x": "1"}, "11", id="same column twice"),
    pytest.param("Hi {name}", {"name": " Ann "}, "Hi  Ann ", id="values inserted as in the file"),
    pytest.param("Code {n}", {"n": 42}, "Code 42", id="non-text value as text"),
    pytest.param("Hi {name}", {"name": "{x}"}, "Hi {x}", id="values are not templates"),
    pytest.param("No fields {{}}", {}, "No fields {}", id="static template"),
]


@pytest.mark.parametrize(("source", "values", "expected"), RENDER_CASES)
def test_render(source: str, values: dict[str, object], expected: str) -> None:
    assert Template.parse(source).render(values) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="None"),
        pytest.param("", id="empty string"),
        pytest.param(" \t", id="whitespace"),
        pytest.param(float("nan"), id="NaN from pandas"),
    ],
)
def test_empty_value_without_fallback_raises_with_the_column(value: object) -> None:
    template = Template.parse("Hi {First Name}, code {code|none}")
    with pytest.raises(MissingMergeValue) as raised:
        template.render({"first name": value})
    assert raised.value.column == "first name"
    assert "first name" in str(raised.value)


def test_absent_column_without_fallback_raises() -> None:
    with pytest.raises(MissingMergeValue) as raised:
        Template.parse("{code}").render({"other": "x"})
    assert raised.value.column == "code"


def test_pandas_missing_values_are_empty() -> None:
    pd = pytest.importorskip("pandas")
    template = Template.parse("{a|-}{b|-}")
    assert template.render({"a": pd.NA, "b": pd.NaT}) == "--"


def test_missing_merge_value_survives_pickling() -> None:
    # The importer renders in worker processes; the column must come back intact.
    copy = pickle.loads(pickle.dumps(MissingMergeValue("first name")))
    assert isinstance(copy, MissingMergeValue)
    assert copy.column == "first name"
    assert str(copy) == str(MissingMergeValue("first name"))


def test_columns_are_normalized_unique_in_first_use_order() -> None:
    template = Template.parse("{ Code }{name|x}{CODE}{City}{name}")
    assert template.columns == ("code", "name", "city")


def test_literal_text_and_is_static() -> None:
    template = Template.parse("Hi {name|there}, {{50%}} off")
    assert template.literal_text == "Hi , {50%} off"
    assert not template.is_static
    static = Template.parse("Sale {{today}}")
    assert static.is_static and static.columns == ()
    assert static.literal_text == static.render({}) == "Sale {today}"


def test_template_is_a_frozen_value() -> None:
    template = Template.parse("Hi {name}")
    assert template == Template("Hi {name}")
    assert template.source == "Hi {name}"
    with pytest.raises(dataclasses.FrozenInstanceError):
        template.source = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param("Hi {name", r"'\{' at character 4 is never closed", id="unclosed field"),
        pytest.param("{", r"'\{' at character 1 is never closed", id="lone open brace"),
        pytest.param("Hi name}", r"'\}' at character 8 closes no field", id="lone close brace"),
        pytest.param("{x}}", r"'\}' at character 4 closes no field", id="brace after a field"),
        pytest.param("{{x}", r"'\}' at character 4 closes no field", id="escaped open only"),
        pytest.param("Hi {}", r"field at character 4 names no column", id="empty field"),
        pytest.param("{  }", r"field at character 1 names no column", id="blank field"),
        pytest.param("{|x}", r"field at character 1 names no column", id="fallback only"),
        pytest.param(
            "a {b{c}}",
            r"'\{' at character 5 is inside the field opened at character 3",
            id="nested field",
        ),
    ],
)
def test_malformed_template_raises_naming_the_position(source: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message) as raised:
        Template.parse(source)
    assert isinstance(raised.value, ValueError)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        pytest.param("First Name", "first name", id="case folded"),
        pytest.param("  Code\t", "code", id="surrounding spaces dropped"),
        pytest.param("Straße", "strasse", id="ß folds to ss"),
    ],
)
def test_normalize_column_name(name: str, normalized: str) -> None:
    assert normalize_column_name(name) == normalized


def test_rendered_body_is_what_gets_counted() -> None:
    template = Template.parse("{greeting|Hello} {name}, 20% off today only – {{promo}}")
    body = template.render({"name": "Zoë"})
    assert body == "Hello Zoë, 20% off today only – {promo}"
    assert count_body(body).encoding == UCS2  # ë and the en dash are outside GSM 03.38
    assert ucs2_characters(body) == ["ë", "–"]
