"""A local SendTextMessage endpoint that speaks the real wire protocol (a program of its own).

- config.py      SimulatorConfig and the account's origination identities, fixed at start
- server.py      HTTP server and wire protocol: X-Amz-Target routing, JSON 1.0, errors with __type
- validation.py  request validation against the service's limits, independent of campaign.options
- account.py     the account model: identities, token buckets, opt-out list, faults, accepted log
- errors.py      ApiError, the refusal every layer raises and the server puts on the wire
- configsets.py  configuration sets and their event destinations (enough for `events setup`)
- events.py      the delivery events of accepted messages, to SNS topics and/or a JSON Lines file

Import from here: `from campaign.simulator import Simulator, SimulatorConfig`.
"""

from __future__ import annotations

from campaign.simulator.account import (
    FAILURE_DESTINATIONS,
    SUCCESS_DESTINATIONS,
    SimulatorStats,
)
from campaign.simulator.config import (
    DEFAULT_IDENTITIES,
    SimulatedIdentity,
    SimulatorConfig,
    load_numbers,
)
from campaign.simulator.server import Simulator, run_simulator

__all__ = [
    "DEFAULT_IDENTITIES",
    "FAILURE_DESTINATIONS",
    "SUCCESS_DESTINATIONS",
    "SimulatedIdentity",
    "Simulator",
    "SimulatorConfig",
    "SimulatorStats",
    "load_numbers",
    "run_simulator",
]
