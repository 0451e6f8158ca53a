"""Report worker processes: metric cards, DORA, health and digest previews computed outside
the process that acknowledges Slack's requests, one process per core.

Report building is CPU-bound Python; in the serving process it would compete with the
acknowledgements for the interpreter. Each worker keeps its own engine and sessions (nothing
is shared across processes); the serving process passes the moment to compute as of, so the
clock is still read only by the surface.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.renderers.mrkdwn import GITHUB_COM, Links
from bot.settings import Config

if TYPE_CHECKING:
    from bot.slack.parse import Command
    from bot.slack.service import Service

log = logging.getLogger("kpibot.slack")

_service: Service | None = None
_now: datetime | None = None


def _clock() -> datetime:
    assert _now is not None
    return _now


def _init(database_url: str, config: Config, links: Links) -> None:
    global _service
    from bot.slack.service import Service
    from bot.store.session import make_engine, session_factory

    _service = Service(
        session_factory(make_engine(database_url)), config, _clock, teams_stored=True, links=links
    )


def _answer(cmd: Command, text: str, user: str, channel: str | None, now: datetime) -> Any:
    global _now
    from bot.slack.listeners.common import compute

    assert _service is not None, "worker not initialised"
    _now = now
    return compute(_service, cmd, text, user, channel)


def _call(name: str, args: tuple[Any, ...], now: datetime) -> Any:
    global _now
    assert _service is not None, "worker not initialised"
    if name not in CALLABLE:
        raise ValueError(f"{name} is not computed in workers")
    _now = now
    return getattr(_service, name)(*args)


CALLABLE = ("card", "home", "health")


def default_count() -> int:
    return max(1, os.cpu_count() or 1)


class ReportWorkers:
    """A pool of ``count`` spawned processes answering report commands."""

    def __init__(
        self,
        database_url: str,
        config: Config,
        count: int | None = None,
        links: Links = GITHUB_COM,
    ) -> None:
        self.count = count or default_count()
        self.pool = ProcessPoolExecutor(
            max_workers=self.count,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init,
            initargs=(database_url, config, links),
        )

    def answer(
        self, cmd: Command, text: str, user: str, channel: str | None, now: datetime
    ) -> dict[str, Any]:
        result: dict[str, Any] = self.pool.submit(_answer, cmd, text, user, channel, now).result(
            timeout=120
        )
        return result

    def call(self, name: str, now: datetime, *args: Any) -> Any:
        """``Service.<name>(*args)`` (``card``, ``home``, ``health``) in a worker, as of ``now``."""
        return self.pool.submit(_call, name, args, now).result(timeout=120)

    def warm_up(self) -> None:
        """Start every process now (imports, connections) rather than on the first command."""
        list(self.pool.map(_ping, range(self.count)))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _ping(_i: int) -> int:
    return os.getpid()
