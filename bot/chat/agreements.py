"""Working agreements in chat, for every platform: ``agreements [team]`` and the buttons of
an agreement line (*Snooze 1 day*, *Exclude from metrics*). Each takes the platform's
:class:`~bot.chat.service.ChatService`, the :class:`Actor` and the button's data
(``{"t": team, "pr": pull request id}``), checks who may act (``bot.chat.permissions``),
writes, and returns a platform-neutral answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot.chat import answers as ans
from bot.chat import permissions as perms
from bot.chat.permissions import Actor, NotAllowed
from bot.errors import KpibotError
from bot.metrics.engine import TeamEngine
from bot.reports.agreements import build_report
from bot.store import agreements as store

if TYPE_CHECKING:
    from bot.chat.service import ChatService

SNOOZE = timedelta(days=1)
MAX_REASON = 500
OLD_BUTTON = "that button is from an older message: run `agreements` again"


def agreements(service: ChatService, team: str) -> ans.AgreementsAnswer:
    """A team's agreements and the PRs in breach now (snoozed ones marked)."""
    config = service.team(team)
    with service.session() as s:
        engine = TeamEngine(s, config)
        found = engine.agreement_breaches(service.now_naive())
        tid = engine.team_id
        snoozed = store.snoozed(s, tid, service.now_naive()) if tid is not None else {}
    return ans.AgreementsAnswer(build_report(config, "list", found, snoozed=snoozed))


def button_data(raw: str | Mapping[str, Any]) -> tuple[str, int]:
    """(team, PR id) from a button's value (JSON text) or data (a mapping)."""
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
        team, pr = str(data["t"]), data["pr"]
    except (ValueError, KeyError, TypeError):
        raise KpibotError(OLD_BUTTON) from None
    if not isinstance(pr, int) or isinstance(pr, bool):
        raise KpibotError(OLD_BUTTON)
    return team, pr


def _team_id(service: ChatService, team: str) -> int:
    with service.session() as s:
        tid = TeamEngine(s, service.team(team)).team_id
    if tid is None:
        raise KpibotError(f"team {team} is not stored yet: try again in a moment")
    return tid


def snooze(service: ChatService, actor: Actor, data: str | Mapping[str, Any]) -> ans.Notice:
    """*Snooze 1 day*: the PR leaves the roll-ups (and is not announced again) for a day.
    Anyone of the workspace may snooze."""
    service.admit(actor)
    team, pr = button_data(data)
    name = service.team(team).name
    tid = _team_id(service, name)
    with service.session() as s:
        until = store.snooze(s, tid, pr, actor.user_id, service.now_naive(), SNOOZE)
        label = store.pull_request_label(s, pr)
    if until is None or label is None:
        return ans.Notice(f"That PR is no longer in breach of a working agreement of {name}.")
    return ans.Notice(
        f"Snoozed {label} for a day (until {until.strftime('%Y-%m-%d %H:%M')} UTC): it stays "
        f"out of {name}'s roll-ups until then."
    )


def check_exclude(service: ChatService, actor: Actor, data: str | Mapping[str, Any]) -> str:
    """Whether ``actor`` may exclude PRs of the button's team (before asking why); returns
    the team's name."""
    service.admit(actor)
    team, _ = button_data(data)
    name = service.team(team).name
    if not perms.may_exclude_pr(actor, leads=service.leads(name)):
        raise NotAllowed(
            f"Only a workspace admin or a lead of {name} can leave a PR out of its metrics."
        )
    return name


def exclude(
    service: ChatService, actor: Actor, data: str | Mapping[str, Any], reason: str
) -> ans.Notice:
    """*Exclude from metrics*: the PR counts for none of the team's KPIs and is never in
    breach again; recorded with who and why. Leads and admins only."""
    name = check_exclude(service, actor, data)
    _, pr = button_data(data)
    why = " ".join(reason.split())
    if not why:
        raise KpibotError("say why the PR should be left out of the metrics")
    tid = _team_id(service, name)
    with service.session() as s:
        label = store.pull_request_label(s, pr)
        if label is None:
            raise KpibotError("that PR is no longer known")
        new = store.exclude(
            s,
            tid,
            pr,
            platform=actor.platform,
            by=actor.user_id,
            reason=why[:MAX_REASON],
            now=service.now_naive(),
        )
    if not new:
        return ans.Notice(f"{label} was already left out of {name}'s metrics.")
    return ans.Notice(
        f"{label} is left out of {name}'s metrics from now on, by "
        f"{service.voice.user(actor.user_id)} (the reason is recorded)."
    )
