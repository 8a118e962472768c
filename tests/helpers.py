"""Helpers the tests import: the in-process CLI runner, CSV writing, the real command in a process,
the isolated environment every test runs in (`isolate`).

Fixtures live in conftest.py; these are plain functions and classes, imported by name."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from campaign.cli import cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
CAMPAIGN_BIN = Path(sys.executable).with_name("campaign")


class Cli:
    """Runs `campaign ...` in-process through Click's runner."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, code: int | None = 0) -> Result:
        result = self.runner.invoke(cli, list(args), input=input, catch_exceptions=False)
        if code is not None:
            assert result.exit_code == code, (
                f"exit {result.exit_code} != {code}\nstdout: {result.stdout}\n"
                f"stderr: {result.stderr}"
            )
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args).stdout)


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def campaign_process(
    *args: str, env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.Popen[str]:
    """The real `campaign` command in its own process (for signals and SIGKILL)."""
    return subprocess.Popen(
        [str(CAMPAIGN_BIN), *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment of `isolated_env` in `tmp_path`, for a fixture of a wider scope (with its
    own MonkeyPatch): returns the ledger file CAMPAIGN_DB names."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "CAMPAIGN_")):
            monkeypatch.delenv(name, raising=False)
    db = tmp_path / "ledger.db"
    monkeypatch.setenv("CAMPAIGN_DB", f"sqlite:///{db}")
    # Placeholders: nothing here may reach AWS, and no real credentials are ever read.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.chdir(tmp_path)
    return db


@contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """An HTTP server on loopback answering with `handler`, in a thread: its URL; stopped on exit."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
