"""What every listener shares: the core (``ChatService``), admin look-ups and reply
settings, plus the steps that more than one kind of listener takes (running a command and
rendering the core's answer, opening the modal)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.chat.answers import BUSY, OOPS
from bot.chat.grammar import Command
from bot.chat.permissions import Actor, NotAllowed
from bot.chat.service import REPORT_KINDS, WRITE_KINDS, ChatService
from bot.errors import KpibotError
from bot.slack import answers, blocks, replies
from bot.slack.membership import ensure_member
from bot.slack.permissions import AdminCache
from bot.slack.replies import Respond
from bot.slack.workers import ReportWorkers, WorkersBusy

log = logging.getLogger("kpibot.slack")


@dataclass
class Deps:
    service: ChatService
    admins: AdminCache
    backoff: float = 0.5  # response_url retry backoff (seconds)
    workers: ReportWorkers | None = None
    hooks_url: str = replies.SLACK_HOOKS_URL  # the only host response URLs are posted to

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
        hooks_url=deps.hooks_url,
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


def refusal(exc: NotAllowed) -> dict[str, Any]:
    """A refused request, as the one ephemeral line it is."""
    return answers.refusal(str(exc))


def home_view(deps: Deps, user: str) -> dict[str, Any]:
    """The person's App Home (computed in a report worker when the app has them)."""
    return answers.home_view(deps.report("home", user))


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
    body: dict[str, Any],
    client: WebClient,
    ack: Callable[..., Any],
    answer: Callable[[dict[str, Any]], None],
) -> None:
    """Acknowledge a parsed command, then answer it with ``answer(payload)``. The request's
    workspace has been admitted already (``handle_kpi``); writes check the person again.

    Reports go to the worker processes when the app has them: this returns right after the
    ack (a listener thread never waits for a report, so the next acks find one free) and
    ``answer`` runs on a worker delivery thread when the report is ready. When more reports are
    waiting than the workers admit, the ack itself says busy and nothing is started. Other
    commands (and reports without workers) are acknowledged, then computed on this thread."""
    workers = deps.workers
    if workers is None or cmd.kind not in REPORT_KINDS:
        ack()
        answer(run_command(deps, cmd, text, user, channel, body=body, client=client))
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
    deps: Deps,
    cmd: Command,
    text: str,
    user: str,
    channel: str | None,
    *,
    body: dict[str, Any],
    client: WebClient,
) -> dict[str, Any]:
    """The answer to a parsed command (after ack), for the person behind ``body``, waiting
    for it. Reports run in the worker processes when the app has them (so report queries never
    hold the acks' interpreter), else here; when too many are waiting, the answer says busy."""
    actor = deps.admins.actor(body, user, admin=cmd.kind in WRITE_KINDS)
    try:
        deps.service.admit(actor)
    except NotAllowed as exc:
        return refusal(exc)
    if deps.workers is not None and cmd.kind in REPORT_KINDS:
        try:
            return deps.workers.answer(cmd, text, user, channel, deps.service.now())
        except WorkersBusy as exc:
            log.info("too busy for /kpi %s (%s); answered busy", cmd.kind, exc)
            return busy_payload()
        except Exception as exc:
            return _after_worker_failure(deps, exc, cmd, text, user, channel)

    def postable() -> str | None:
        return ensure_member(client, channel) if channel else None

    return compute(deps.service, cmd, text, user, channel, actor, postable)


def _after_worker_failure(
    deps: Deps, exc: BaseException, cmd: Command, text: str, user: str, channel: str | None
) -> dict[str, Any]:
    """The answer to a report when the workers could not give one. A pool that broke again
    after being replaced gets an apology (a report that kills workers must not run in the
    serving process); any other failure (a timeout, a result that would not pickle) is computed
    here so the answer is not lost."""
    if isinstance(exc, BrokenProcessPool):
        log.error("report workers died twice answering /kpi %s; answered with an apology", cmd.kind)
        return blocks.error_payload(OOPS)
    log.warning("report worker failed (%s); answering in-process", type(exc).__name__)
    return compute(deps.service, cmd, text, user, channel)


def compute(
    svc: ChatService,
    cmd: Command,
    text: str,
    user: str,
    channel: str | None,
    actor: Actor | None = None,
    ensure_postable: Callable[[], str | None] | None = None,
) -> dict[str, Any]:
    """The core's answer (:meth:`ChatService.dispatch`) as a Slack payload: never raises."""
    answer = svc.dispatch(cmd, text, user, channel, actor, ensure_postable)
    try:
        return answers.payload(answer, svc.links)
    except Exception:
        log.exception("rendering the answer to /kpi %s failed", cmd.kind)
        return blocks.error_payload(OOPS)


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
