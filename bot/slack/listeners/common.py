"""What every listener shares: the service, admin look-ups and reply settings, plus the
steps that more than one kind of listener takes (running a command, opening the modal)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import KpibotError
from bot.slack import blocks, replies
from bot.slack.parse import Command
from bot.slack.permissions import AdminCache
from bot.slack.replies import Respond
from bot.slack.service import NeedTeam, Service
from bot.slack.workers import ReportWorkers, WorkersBusy

log = logging.getLogger("kpibot.slack")

OOPS = (
    "Something went wrong on my side while answering that. Please try again; if it keeps "
    "happening, ask whoever runs kpibot to look at its log."
)
BUSY = (
    "I'm busy answering a lot of other requests right now, so I didn't start on this one. "
    "Please try again in a minute."
)


@dataclass
class Deps:
    service: Service
    admins: AdminCache
    backoff: float = 0.5  # response_url retry backoff (seconds)
    workers: ReportWorkers | None = None

    def report(self, name: str, *args: Any) -> Any:
        """``service.<name>(*args)`` for the slow reports (``card``, ``home``), in a worker
        process when the app has them, else on this thread."""
        if self.workers is not None:
            try:
                return self.workers.call(name, self.service.now(), *args)
            except KpibotError:
                raise
            except Exception as exc:
                log.warning("report worker failed (%s); computing in-process", type(exc).__name__)
        return getattr(self.service, name)(*args)


def reply(
    deps: Deps,
    respond: Respond | None,
    client: WebClient,
    payload: dict[str, Any],
    *,
    channel: str | None,
    user: str | None,
    replace_original: bool | None = None,
) -> None:
    replies.send(
        respond,
        client,
        payload,
        channel=channel,
        user=user,
        backoff=deps.backoff,
        replace_original=replace_original,
    )


def say_beside(
    deps: Deps,
    respond: Respond | None,
    client: WebClient,
    text: str,
    *,
    channel: str | None,
    user: str | None,
) -> None:
    """A short ephemeral note to whoever clicked, leaving the message they clicked in place."""
    reply(
        deps,
        respond,
        client,
        blocks.message(text),
        channel=channel,
        user=user,
        replace_original=False,
    )


REPORT_KINDS = ("card", "dora", "health", "digest")


def busy_payload() -> dict[str, Any]:
    """The ephemeral answer when too many reports are waiting for the worker processes."""
    return blocks.message(BUSY)


def answer_command(
    deps: Deps,
    cmd: Command,
    text: str,
    user: str,
    channel: str | None,
    *,
    ack: Callable[..., Any],
    answer: Callable[[dict[str, Any]], None],
) -> None:
    """Acknowledge a parsed command, then answer it with ``answer(payload)``.

    Reports go to the worker processes when the app has them: this returns right after the
    ack (a listener thread never waits for a report, so the next acks find one free) and
    ``answer`` runs on a worker delivery thread when the report is ready. When more reports are
    waiting than the workers admit, the ack itself says busy and nothing is started. Other
    commands (and reports without workers) are acknowledged, then computed on this thread."""
    workers = deps.workers
    if workers is None or cmd.kind not in REPORT_KINDS:
        ack()
        answer(compute(deps.service, cmd, text, user, channel))
        return
    try:
        job = workers.submit_answer(cmd, text, user, channel, deps.service.now())
    except WorkersBusy as exc:
        log.info("too busy for /kpi %s (%s); answered busy", cmd.kind, exc)
        ack(**busy_payload())
        return
    except Exception as exc:
        ack()
        answer(_after_worker_failure(deps, exc, cmd, text, user, channel))
        return
    ack()

    def done(future: Future[dict[str, Any]]) -> None:
        if future.cancelled():  # the app is closing
            return
        try:
            payload = future.result()
        except CancelledError:
            return
        except Exception as exc:
            payload = _after_worker_failure(deps, exc, cmd, text, user, channel)
        try:
            answer(payload)
        except Exception:
            log.exception("delivering the answer to /kpi %s failed", cmd.kind)

    job.add_done_callback(done)


def run_command(
    deps: Deps, cmd: Command, text: str, user: str, channel: str | None
) -> dict[str, Any]:
    """The answer to a parsed command (after ack), waiting for it. Reports run in the worker
    processes when the app has them (so report queries never hold the acks' interpreter), else
    here; when too many are waiting, the answer says busy."""
    if deps.workers is not None and cmd.kind in REPORT_KINDS:
        try:
            return deps.workers.answer(cmd, text, user, channel, deps.service.now())
        except WorkersBusy as exc:
            log.info("too busy for /kpi %s (%s); answered busy", cmd.kind, exc)
            return busy_payload()
        except Exception as exc:
            return _after_worker_failure(deps, exc, cmd, text, user, channel)
    return compute(deps.service, cmd, text, user, channel)


def _after_worker_failure(
    deps: Deps, exc: BaseException, cmd: Command, text: str, user: str, channel: str | None
) -> dict[str, Any]:
    """The answer when the workers could not give one. A pool that broke again after being
    replaced gets an apology (a report that kills workers must not run in the serving
    process); any other failure (a timeout, a result that would not pickle) is computed here
    so the answer is not lost."""
    if isinstance(exc, BrokenProcessPool):
        log.error("report workers died twice answering /kpi %s; answered with an apology", cmd.kind)
        return blocks.error_payload(OOPS)
    log.warning("report worker failed (%s); answering in-process", type(exc).__name__)
    return compute(deps.service, cmd, text, user, channel)


def compute(
    svc: Service, cmd: Command, text: str, user: str, channel: str | None
) -> dict[str, Any]:
    """Report, write, or a clear error: never raises."""
    try:
        if cmd.kind == "team_set":
            assert cmd.team is not None
            if not channel:
                raise KpibotError("run `/kpi team set` in the channel you want to map")
            return svc.set_channel_team(channel, cmd.team, user)
        if cmd.kind == "subscribe":
            if not channel:
                raise KpibotError("run `/kpi subscribe` in the channel that should get the digest")
            team = svc.resolve_team(cmd.team, channel, user)
            return svc.subscribe(channel, team, cmd.digest or "weekly", user, cmd.schedule)
        if cmd.kind == "unsubscribe":
            return svc.unsubscribe(channel or "", cmd.team, cmd.digest)
        return svc.answer(cmd, user, channel)
    except NeedTeam:
        return blocks.which_team_payload(text, svc.team_names())
    except KpibotError as exc:
        return blocks.error_payload(_sentence(str(exc)), channel_team=None)
    except Exception:
        log.exception("answering /kpi %s failed", cmd.kind)
        return blocks.error_payload(OOPS)


def _sentence(s: str) -> str:
    s = s.strip()
    return s[:1].upper() + s[1:] if s else s


def open_item_modal(
    deps: Deps,
    client: WebClient,
    *,
    trigger_id: str,
    user: str,
    channel: str | None,
    team: str | None,
    kpi: str | None,
    item_id: int | None = None,
) -> str | None:
    """Open the action-item modal at once (Slack's trigger lasts 3 s), then add the KPI's
    baseline with ``views.update``. Returns advice when the modal could not be opened."""
    svc = deps.service
    item = svc.item(item_id) if item_id is not None else None
    if team is None and item is None:
        try:
            team = svc.resolve_team(None, channel, user)
        except KpibotError:
            team = None
    view = blocks.action_modal(
        teams=svc.team_names(),
        team=team,
        kpi=kpi,
        owner=user,
        metadata={"channel": channel, "item": item_id},
        item=item,
    )
    try:
        opened = client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        error = exc.response.get("error")
        log.warning("views.open failed: %s", error)
        if error in ("expired_trigger_id", "invalid_trigger_id"):
            return "That took too long and Slack closed the form; please try again."
        return replies.advice(exc)
    chosen_team = item.team if item else team
    chosen_kpi = item.kpi if item else kpi
    if chosen_team and chosen_kpi:
        try:
            if item is not None:
                text = blocks.baseline_text(item.kpi, item.baseline)
            else:
                value, n = svc.baseline(chosen_team, chosen_kpi)
                text = blocks.baseline_text(chosen_kpi, value, n) + " over the last 28 days"
            updated = blocks.action_modal(
                teams=svc.team_names(),
                team=team,
                kpi=kpi,
                owner=user,
                metadata={"channel": channel, "item": item_id},
                item=item,
                baseline=text,
            )
            v = opened.get("view") or {}
            client.views_update(view_id=v.get("id"), hash=v.get("hash"), view=updated)
        except (SlackApiError, KpibotError) as exc:
            log.info("could not add the baseline to the modal: %s", type(exc).__name__)
    return None
