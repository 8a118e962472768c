"""What `send` shows of the throttle control (issue 8): the share throttled and the verdict, on the
progress bar and in the final summary."""

from __future__ import annotations

import pytest

from campaign.cli.send import throttle_note
from campaign.sending.pacing import NO_VERDICT, NOT_RATE_DRIVEN, RATE_DRIVEN, ControlStatus


def status(
    verdict: str, *, testing: bool = False, rate: float = 200, holding: float = 200
) -> ControlStatus:
    return ControlStatus(
        configured=200,
        rate=rate,
        holding=holding,
        verdict=verdict,
        testing=testing,
        reason="why",
        calls=1000,
        throttles=100,
        recent_share=0.1,
    )


@pytest.mark.parametrize(
    ("control", "note"),
    [
        (status(NOT_RATE_DRIVEN), "10% (service-side: rate held at 200 MPS)"),
        (status(RATE_DRIVEN, rate=120, holding=120), "10% (rate limit: slowed to 120 MPS)"),
        (
            status(NO_VERDICT, testing=True, rate=140),
            "10% (testing 140 MPS: is our rate the cause?)",
        ),
        (status(NO_VERDICT, rate=1.7), "10% (watching; 1.7 MPS)"),
    ],
)
def test_the_throttle_note_says_the_share_and_the_verdict(
    control: ControlStatus, note: str
) -> None:
    assert throttle_note(control) == note


def test_no_throttles_is_zero() -> None:
    quiet = ControlStatus(200, 200, 200, NO_VERDICT, False, "no throttles", 50, 0, 0.0)
    assert throttle_note(quiet) == "0"


def test_a_small_share_keeps_a_decimal() -> None:
    small = ControlStatus(200, 200, 200, NOT_RATE_DRIVEN, False, "r", 1000, 5, 0.005)
    assert throttle_note(small) == "0.5% (service-side: rate held at 200 MPS)"


def test_one_of_a_kind_is_singular() -> None:
    """Issue 13: "1 parts" never prints; the texts below the CLI count with the same rule."""
    from campaign.errors import count
    from campaign.pricing import PriceTable, PriceTableError
    from campaign.sending.pacing import AdaptiveRate

    assert (count(1, "part"), count(2, "part"), count(1000, "row")) == (
        "1 part",
        "2 parts",
        "1,000 rows",
    )
    with pytest.raises(PriceTableError, match="row 1: 3 cells but the header has 2 columns "):
        PriceTable.parse("country,price_per_part\nUS,0,01\n", source="p.csv")
    clock = iter(float(t) for t in range(100))
    adaptive = AdaptiveRate(100, clock=lambda: next(clock))
    adaptive.on_throttle()
    assert "1 throttled call," in adaptive.status().reason
