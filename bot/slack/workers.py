"""Slack's reports in the shared report worker processes (:mod:`bot.chat.workers`): the
core's answer rendered as a Slack payload, and the slow core calls of buttons and App Home."""

from __future__ import annotations

from concurrent.futures import Future
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.chat import workers
from bot.chat.workers import WorkersBusy, default_count

if TYPE_CHECKING:
    from bot.chat.grammar import Command

__all__ = ["CALLABLE", "ReportWorkers", "WorkersBusy", "default_count"]

CALLABLE = ("card", "home", "health")


def slack_answer(cmd: Command, text: str, user: str, channel: str | None) -> dict[str, Any]:
    """In a worker: the answer to ``cmd`` as a Slack payload."""
    from bot.slack.answers import SlackVoice
    from bot.slack.listeners.common import compute

    return compute(workers.service(SlackVoice), cmd, text, user, channel)


def slack_call(name: str, *args: Any) -> Any:
    """In a worker: ``ChatService.<name>(*args)`` for one of :data:`CALLABLE`."""
    from bot.slack.answers import SlackVoice

    if name not in CALLABLE:
        raise ValueError(f"{name} is not computed in workers")
    return getattr(workers.service(SlackVoice), name)(*args)


class ReportWorkers(workers.ReportWorkers):
    """The shared pool, with Slack's ways of asking it."""

    def submit_answer(
        self, cmd: Command, text: str, user: str, channel: str | None, now: datetime
    ) -> Future[dict[str, Any]]:
        """Start computing the Slack answer to ``cmd`` (:meth:`submit`: may raise
        :class:`WorkersBusy`)."""
        return self.submit(slack_answer, now, cmd, text, user, channel)

    def answer(
        self, cmd: Command, text: str, user: str, channel: str | None, now: datetime
    ) -> dict[str, Any]:
        """:meth:`submit_answer`, waiting for the answer."""
        result: dict[str, Any] = self.submit_answer(cmd, text, user, channel, now).result(
            timeout=workers.TIMEOUT
        )
        return result

    def call(self, name: str, now: datetime, *args: Any) -> Any:
        """``ChatService.<name>(*args)`` (``card``, ``home``, ``health``) in a worker, as of
        ``now`` (counted in the waiting work, never refused)."""
        return self.run(slack_call, now, name, *args)
