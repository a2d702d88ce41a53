"""Fixtures shared by the functional tests of one area (the server fixtures are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import RunningServer
from tests.smtp_support import Relay


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    """A real SMTP server standing in for the outbound relay; it keeps what it receives."""
    started = await Relay().start()
    yield started
    await started.stop()


@pytest.fixture
async def relayed(server_factory, relay: Relay) -> RunningServer:  # type: ignore[no-untyped-def]
    """A Postroom whose outbound relay is the test's SMTP server."""
    return await server_factory(  # type: ignore[no-any-return]
        POSTROOM_SMTP_RELAY_HOST="127.0.0.1", POSTROOM_SMTP_RELAY_PORT=str(relay.port)
    )
