"""The Ledger facade is composed of one mixin per concern (see campaign/ledger/__init__.py); this
checks what that composition could silently get wrong."""

from __future__ import annotations

import inspect

from campaign.ledger import Ledger


def concerns() -> list[type]:
    return [base for base in Ledger.__mro__[1:] if base is not object]


def own_methods(cls: type) -> set[str]:
    return {name for name, value in vars(cls).items() if inspect.isfunction(value)}


def test_no_method_is_defined_by_two_concerns() -> None:
    # With mixins, a second definition would silently shadow the first.
    seen: dict[str, str] = {}
    for concern in concerns():
        for name in own_methods(concern):
            assert name not in seen, f"{name} is defined by {seen[name]} and {concern.__name__}"
            seen[name] = concern.__name__


def test_the_facade_adds_no_queries_of_its_own() -> None:
    assert own_methods(Ledger) == {"__init__"}
    assert len(concerns()) >= 4
    assert all(c.__module__.startswith("campaign.ledger.") for c in concerns())
