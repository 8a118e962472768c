"""The single-sender lock (acquire_sender, heartbeat, release_sender), straight against the ledger.

On one ledger, one sender at a time owns a campaign; a lock whose owner is dead (same host, pid gone)
or silent (no heartbeat for `stale_after`) is taken over; only the owner's token beats or releases."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from campaign.domain import Campaign, aware, now
from campaign.ledger import Ledger, SenderBusy
from campaign.ledger.engine import open_ledger_engine
from tests.ledger.helpers import add_campaign, age_heartbeat, between, lock_row

HOST = "test-host"


def alive(pid: int | None) -> bool:
    return True


def dead(pid: int | None) -> bool:
    return False


def heartbeat_age(ledger: Ledger, campaign: Campaign) -> timedelta:
    heartbeat = aware(lock_row(ledger, campaign).sender_heartbeat)
    assert heartbeat is not None
    return now() - heartbeat


def test_the_first_sender_takes_the_lock(ledger: Ledger) -> None:
    campaign = add_campaign(ledger)
    before = now()

    ledger.acquire_sender(campaign.id, token="first", pid=101, host=HOST, is_alive=alive)

    lock = lock_row(ledger, campaign)
    assert (lock.sender_token, lock.sender_pid, lock.sender_host) == ("first", 101, HOST)
    assert between(aware(lock.sender_heartbeat), before, now())


def test_a_second_sender_is_refused_while_the_first_is_alive(ledger: Ledger) -> None:
    campaign = add_campaign(ledger)
    ledger.acquire_sender(campaign.id, token="first", pid=101, host=HOST, is_alive=alive)

    with pytest.raises(SenderBusy, match=f"already being sent by pid 101 on {HOST}"):
        ledger.acquire_sender(campaign.id, token="second", pid=102, host=HOST, is_alive=alive)

    assert lock_row(ledger, campaign).sender_token == "first"


def test_a_dead_sender_on_the_same_host_is_taken_over(ledger: Ledger) -> None:
    campaign = add_campaign(ledger)
    ledger.acquire_sender(campaign.id, token="first", pid=101, host=HOST, is_alive=alive)
    asked: list[int | None] = []

    def is_alive(pid: int | None) -> bool:
        asked.append(pid)
        return False

    ledger.acquire_sender(campaign.id, token="second", pid=102, host=HOST, is_alive=is_alive)

    assert asked == [101]
    assert (lock_row(ledger, campaign).sender_token, lock_row(ledger, campaign).sender_pid) == (
        "second",
        102,
    )


def test_a_pid_on_another_host_is_not_judged_by_this_host(ledger: Ledger) -> None:
    campaign = add_campaign(ledger)
    ledger.acquire_sender(campaign.id, token="first", pid=101, host="other-host", is_alive=alive)

    # pid 101 does not exist here, but that says nothing about the other host's pid 101.
    with pytest.raises(SenderBusy):
        ledger.acquire_sender(campaign.id, token="second", pid=102, host=HOST, is_alive=dead)

    assert lock_row(ledger, campaign).sender_token == "first"


def test_a_silent_sender_is_taken_over_after_stale_after(ledger: Ledger) -> None:
    campaign = add_campaign(ledger)
    ledger.acquire_sender(campaign.id, token="first", pid=101, host="other-host", is_alive=alive)
    age_heartbeat(ledger, campaign, timedelta(seconds=90))
    with pytest.raises(SenderBusy):
        ledger.acquire_sender(
            campaign.id,
            token="second",
            pid=102,
            host=HOST,
            is_alive=alive,
            stale_after=timedelta(seconds=120),
        )

    ledger.acquire_sender(
        campaign.id,
        token="second",
        pid=102,
        host=HOST,
        is_alive=alive,
        stale_after=timedelta(seconds=60),
    )

    assert lock_row(ledger, campaign).sender_token == "second"


def test_a_heartbeat_keeps_the_lock_and_only_the_owner_can_beat(ledger: Ledger) -> None:
    campaign = add_campaign(ledger)
    ledger.acquire_sender(campaign.id, token="first", pid=101, host="other-host", is_alive=alive)
    age_heartbeat(ledger, campaign, timedelta(seconds=90))

    ledger.heartbeat(campaign.id, "someone-else")
    assert heartbeat_age(ledger, campaign) > timedelta(seconds=60)
    ledger.heartbeat(campaign.id, "first")

    with pytest.raises(SenderBusy):
        ledger.acquire_sender(campaign.id, token="second", pid=102, host=HOST, is_alive=dead)


def test_only_the_owner_releases_the_lock(ledger: Ledger) -> None:
    campaign = add_campaign(ledger)
    ledger.acquire_sender(campaign.id, token="first", pid=101, host=HOST, is_alive=alive)

    ledger.release_sender(campaign.id, "someone-else")
    assert lock_row(ledger, campaign).sender_token == "first"
    ledger.release_sender(campaign.id, "first")

    assert tuple(lock_row(ledger, campaign)) == (None, None, None, None)
    ledger.acquire_sender(campaign.id, token="second", pid=102, host=HOST, is_alive=alive)
    assert lock_row(ledger, campaign).sender_token == "second"


def test_a_sender_taken_over_cannot_release_or_beat_for_the_new_owner(ledger: Ledger) -> None:
    campaign = add_campaign(ledger)
    ledger.acquire_sender(campaign.id, token="first", pid=101, host=HOST, is_alive=alive)
    ledger.acquire_sender(campaign.id, token="second", pid=102, host=HOST, is_alive=dead)
    age_heartbeat(ledger, campaign, timedelta(seconds=30))

    ledger.heartbeat(campaign.id, "first")
    ledger.release_sender(campaign.id, "first")

    lock = lock_row(ledger, campaign)
    assert (lock.sender_token, lock.sender_pid) == ("second", 102)
    assert heartbeat_age(ledger, campaign) > timedelta(seconds=20)


def test_the_lock_is_per_campaign(ledger: Ledger) -> None:
    spring = add_campaign(ledger, "spring")
    autumn = add_campaign(ledger, "autumn")
    ledger.acquire_sender(spring.id, token="spring-sender", pid=101, host=HOST, is_alive=alive)

    ledger.acquire_sender(autumn.id, token="autumn-sender", pid=102, host=HOST, is_alive=alive)

    assert lock_row(ledger, spring).sender_token == "spring-sender"
    assert lock_row(ledger, autumn).sender_token == "autumn-sender"


@pytest.mark.parametrize("takeover", [False, True], ids=["free", "dead-owner"])
def test_of_two_senders_starting_at_once_exactly_one_wins(
    ledger: Ledger, ledger_url: str, takeover: bool
) -> None:
    campaign = add_campaign(ledger)
    if takeover:
        ledger.acquire_sender(campaign.id, token="dead", pid=100, host=HOST, is_alive=alive)
    # Free lock: both start together. Dead owner: both have read the old lock before either
    # writes (acquire_sender asks is_alive between its read and its compare-and-set), so the
    # compare-and-set alone must keep the second one out.
    started = threading.Barrier(2)
    both_have_read = threading.Barrier(2)
    won: list[str] = []
    refused: list[str] = []
    errors: list[BaseException] = []

    def owner_is_alive(pid: int | None) -> bool:
        if pid != 100:
            return True  # the sender that won a free lock
        both_have_read.wait(timeout=30)
        return False

    def start(token: str, pid: int) -> None:
        engine = open_ledger_engine(ledger_url)
        try:
            started.wait(timeout=30)
            Ledger(engine).acquire_sender(
                campaign.id, token=token, pid=pid, host=HOST, is_alive=owner_is_alive
            )
            won.append(token)
        except SenderBusy as exc:
            refused.append(str(exc))
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start, args=(f"s{i}", 200 + i)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert errors == []
    assert len(won) == 1 and len(refused) == 1
    if takeover:
        assert "another sender started at the same moment" in refused[0]
    assert lock_row(ledger, campaign).sender_token == won[0]
