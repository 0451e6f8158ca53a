"""One simulated fortnight of kpibot speaking up for a team with a Slack channel and a Teams
channel: the real scheduler on an injected clock, the fake Slack and the fake Teams
connector on loopback, the fake GitHub for the periodic sync (it answers 401 three times,
then works again) and PRs arriving as signed GitHub webhooks over real HTTP.

Working agreements are announced once per PR and agreement in each conversation, naming the
author (a mention where the identity mapping knows them); a snooze is honoured; roll-ups come
at 09:00 team time; off target and recovered alerts come once per crossing; the noise budget
holds alerts and nudges together, the held-back ones listed in the next roll-up; one
freshness notice after the third failed sync and one when it recovers; a restart half-way
sends nothing twice; and the calibration preview counts the alerts the run sent."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from bot.chat import agreements as chat_agreements
from bot.chat.permissions import Actor
from bot.chat.service import ChatService
from bot.metrics.engine import TeamEngine
from bot.metrics.registry import Target
from bot.reports import alerts as alert_reports
from bot.scheduler.jobs import SchedulerOptions
from bot.scheduler.posting import Poster
from bot.scheduler.service import SchedulerService
from bot.settings import Agreements, Config, Person, Settings, TeamConfig
from bot.store import subscriptions as subs
from bot.store.models import AlertEvent, NoticeRun, PullRequest
from bot.store.session import session_factory
from bot.surfaces.http import HttpApp, Server
from bot.surfaces.webhooks import Webhooks, install, sign
from bot.teams.answers import TeamsVoice
from tests import factories as fx
from tests.fakes.github import FakeGitHub, Repo
from tests.fakes.teams import TENANT_ID, FakeTeams
from tests.scheduler_fakes import SchedulerSlack, poster_for, setup_org
from tests.test_teams import assert_valid_card
from tests.test_teams_delivery import poster as teams_poster

SLACK = "CPAY00001"
TEAMS = "19:payments-general@thread.tacv2"
TOKEN = "ghp_fortnight_token"
SECRET = "whsec-fortnight"
ALICE_SLACK, ALICE_TEAMS = "U0ALICE01", "aad-alice-0001"
TEAM = TeamConfig(
    name="payments",
    timezone="Europe/Berlin",
    channel=SLACK,
    repos=("acme/api",),
    agreements=Agreements(first_review_within=4 * 3600, pr_size_under=400),
    alerts={"first-review": True},
    noise_budget=3,
)
ORG = Config((TEAM,), people=(Person("alice", slack=ALICE_SLACK, teams=ALICE_TEAMS),))
START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # a Monday; Berlin is UTC+1
END = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)
RESTART = datetime(2026, 11, 9, 12, 0, tzinfo=UTC)
STEP = timedelta(minutes=30)


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


class SimClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


# ------------------------------------------------------------------ merged PRs (the alert)

# first review waits of the PRs merged each day from Oct 19: quick for two weeks before the
# fortnight, slow in its first week (off target once they are most of the 7-day window),
# quick again in the second (back on target after the cool-down)
WAITS = [1] * 14 + [8] * 7 + [1] * 7


def merged_plan() -> list[dict[str, Any]]:
    out = []
    first = utc(2026, 10, 19)
    for day, wait in enumerate(WAITS):
        for k, hour in enumerate((11, 15, 17)):
            merged = first + timedelta(days=day, hours=hour)
            created = merged - timedelta(hours=wait + 1)
            out.append(
                {
                    "number": 1000 + 3 * day + k,
                    "created": created,
                    "reviewed": created + timedelta(hours=wait),
                    "merged": merged,
                }
            )
    return out


def write_merged(f: Any, pending: list[dict[str, Any]], now: datetime) -> None:
    """The PRs merged by ``now`` reach the store, as a sync would bring them."""
    with f() as s:
        while pending and pending[0]["merged"] <= now:
            p = pending.pop(0)
            fx.pr(
                s,
                number=p["number"],
                created=naive(p["created"]),
                merged=naive(p["merged"]),
                reviews=[("bob", "APPROVED", naive(p["reviewed"]))],
            )
        s.commit()


# ------------------------------------------------------------------ signed webhooks


#: the open PRs of the fortnight: number -> (author, opened at, lines)
PRS = {
    1: ("alice", utc(2026, 11, 2, 9), 20),  # first review due 13:00
    2: ("carol", utc(2026, 11, 3, 10), 650),  # too big at once
    3: ("alice", utc(2026, 11, 4, 12), 20),  # due 16:00
    4: ("carol", utc(2026, 11, 6, 10), 20),  # due 14:00
    5: ("alice", utc(2026, 11, 10, 9), 20),  # due 13:00, in the next week
}
REPOSITORY = {"full_name": "acme/api", "name": "api", "owner": {"login": "acme"}, "id": 77}


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def pull(number: int, at: datetime, *, merged: bool = False) -> dict[str, Any]:
    """The webhook's ``pull_request`` as GitHub sends it at ``at`` (titles with markup)."""
    author, opened_at, size = PRS[number]
    return {
        "number": number,
        "title": f"Change {number} <b>&",
        "html_url": f"https://github.com/acme/api/pull/{number}",
        "user": {"login": author, "type": "User"},
        "state": "closed" if merged else "open",
        "merged": merged,
        "merged_at": stamp(at) if merged else None,
        "closed_at": stamp(at) if merged else None,
        "draft": False,
        "created_at": stamp(opened_at),
        "updated_at": stamp(at),
        "base": {"ref": "main"},
        "head": {"ref": f"change-{number}"},
        "labels": [],
        "additions": size,
        "deletions": 0,
        "changed_files": 1,
    }


def deliver(url: str, event: str, payload: dict[str, Any]) -> None:
    """One GitHub delivery, signed with the webhook secret, over loopback HTTP."""
    body = json.dumps({**payload, "repository": REPOSITORY}).encode()
    r = httpx.post(
        url + "/webhooks/github",
        content=body,
        headers={
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": hashlib.sha1(body).hexdigest(),
            "X-Hub-Signature-256": sign(SECRET, body),
            "Content-Type": "application/json",
        },
    )
    assert r.status_code == 200, r.text


def opened(url: str, number: int) -> None:
    at = PRS[number][1]
    deliver(url, "pull_request", {"action": "opened", "pull_request": pull(number, at)})


def reviewed(url: str, number: int, at: datetime) -> None:
    review = {
        "id": 5000 + number,
        "user": {"login": "bob", "type": "User"},
        "state": "commented",
        "submitted_at": stamp(at),
    }
    payload = {"action": "submitted", "review": review, "pull_request": pull(number, at)}
    deliver(url, "pull_request_review", payload)


def merged(url: str, number: int, at: datetime) -> None:
    payload = {"action": "closed", "pull_request": pull(number, at, merged=True)}
    deliver(url, "pull_request", payload)


# ------------------------------------------------------------------ what was posted


def slack_kind(key: str) -> str:
    return (
        key.split(":", 1)[0] if not key.startswith("notice:") else "notice:" + key.rsplit(":", 1)[1]
    )


def slack_prs(m: dict[str, Any]) -> list[str]:
    """``#<number>`` of each PR line, then ``held: <text>`` of each line held back."""
    out = []
    for b in m["blocks"] or []:
        t = b["text"]["text"] if b["type"] == "section" else ""
        if t.startswith("• "):
            out.append("#" + PR_NUMBER.findall(t)[0])
        if t.startswith("*Held back this week"):
            out += ["held: " + line.removeprefix("• ") for line in t.split("\n")[1:]]
    return out


PR_NUMBER = re.compile(r"acme/api#(\d+)")


def teams_kind(activity: dict[str, Any]) -> str:
    summary = str(activity.get("summary") or "")
    for prefix, kind in (
        ("Working agreement missed", "agreement"),
        ("Still open against", "rollup"),
        ("Weekly leading indicators", "digest"),
    ):
        if summary.startswith(prefix):
            return kind
    if " is off target" in summary or "recovered" in summary:
        return "alert"
    if "works again" in summary:
        return "notice:recovered"
    if "failed" in summary:
        return "notice:failing"
    return summary


def card_of(activity: dict[str, Any]) -> dict[str, Any]:
    return activity["attachments"][0]["content"]


def teams_prs(activity: dict[str, Any]) -> list[str]:
    out, held = [], False
    for el in card_of(activity).get("body", []):
        t = el.get("text", "") if el.get("type") == "TextBlock" else ""
        if t.startswith("**Held back this week"):
            held = True
        elif t.startswith("- ") and held:
            out.append("held: " + t[2:].replace("\\", ""))
        elif t.startswith("- acme/api#"):
            out.append("#" + PR_NUMBER.findall(t)[0])
    return out


def test_a_fortnight_of_speaking_up_in_slack_and_teams(engine):
    f = session_factory(engine)
    ids = setup_org(f, ORG)
    pending = merged_plan()
    write_merged(f, pending, START)  # the two weeks before
    clock = SimClock(START)
    empty = Repo("acme", "api", database_id=77)
    slack_log: list[tuple[datetime, str, list[str]]] = []
    teams_log: list[tuple[datetime, str, list[str]]] = []
    with (
        FakeGitHub([empty], token=TOKEN) as gh,
        SchedulerSlack() as slack,
        FakeTeams() as teams,
    ):
        with f() as s:  # the Teams channel subscribed to the weekly digest, its reference kept
            subs.subscribe(
                s,
                platform="teams",
                channel_id=TEAMS,
                team_id=ids["payments"],
                kind="weekly",
                created_by="aad-lead",
                now=naive(START) - timedelta(days=1),
                reference=subs.Reference(teams.service_url, TENANT_ID),
            )
            s.commit()
        slack.add_channel(SLACK)
        app = HttpApp()
        install(app, Webhooks(f, ORG, SECRET, clock=clock))
        web = Server(app, host="127.0.0.1", port=0, threads=4).start()
        settings = Settings(github_token=TOKEN, github_api_url=gh.url)
        opts = SchedulerOptions(sync_every=timedelta(hours=6))
        chat = ChatService(f, ORG, clock, TeamsVoice())

        def service() -> SchedulerService:
            posters: dict[str, Poster] = {
                "slack": poster_for(slack),
                "teams": teams_poster(teams, f),
            }
            svc = SchedulerService(settings, f, ORG, posters, clock=clock, options=opts)
            svc.build(blocking=False)
            return svc

        svc = service()
        seen_slack = seen_teams = 0
        try:
            while clock.now < END:
                now = clock.now
                write_merged(f, pending, now)
                for number, (_, at, _) in PRS.items():
                    if now == at:
                        opened(web.url, number)
                if now == utc(2026, 11, 3, 14):
                    reviewed(web.url, 1, now)
                if now == utc(2026, 11, 4, 7, 30):  # snoozed from the Teams card's button
                    with f() as s:
                        pr2 = s.scalar(select(PullRequest.id).where(PullRequest.number == 2))
                    notice = chat_agreements.snooze(
                        chat, Actor("teams", "aad-carol", None), {"t": "payments", "pr": pr2}
                    )
                    assert "Snoozed acme/api#2 for a day" in notice.text
                if now == utc(2026, 11, 6, 15):
                    merged(web.url, 1, now)
                    merged(web.url, 3, now)
                if now == utc(2026, 11, 9, 6):
                    gh.token = "ghp_revoked"  # the syncs at 06:00, 12:00 and 18:00 fail
                if now == RESTART:  # a new process after the old one stopped
                    svc.stop()
                    svc = service()
                if now == utc(2026, 11, 10, 0):
                    gh.token = TOKEN
                if now == utc(2026, 11, 10, 9):
                    merged(web.url, 2, now)
                    merged(web.url, 4, now)
                assert svc.tick()
                if now.hour % 6 == 0 and now.minute == 0:  # the periodic sync
                    svc.fire_sync()
                    assert svc.tick()
                for m in slack.posts(SLACK)[seen_slack:]:
                    key = str(((m.get("metadata") or {}).get("event_payload") or {}).get("key"))
                    slack_log.append((now, slack_kind(key), slack_prs(m)))
                seen_slack = len(slack.posts(SLACK))
                for a in teams.posted(TEAMS)[seen_teams:]:
                    teams_log.append((now, teams_kind(a.activity), teams_prs(a.activity)))
                seen_teams = len(teams.posted(TEAMS))
                clock.now += STEP
        finally:
            svc.stop()
            web.stop()
        slack_msgs = slack.posts(SLACK)
        teams_msgs = [a.activity for a in teams.posted(TEAMS)]

    off = (
        "held: First review time of payments is off target: 8.0h (n = 21) over the last 7 "
        "days, target {lt} 4.0h"
    )
    nudge, roll, alert = "agreement", "rollup", "alert"
    expected = [
        # Monday: PR 1 (alice) unreviewed 4 h after it opened
        (utc(2026, 11, 2, 13), nudge, ["#1"]),
        # roll-ups at 09:00 Berlin (08:00 UTC)
        (utc(2026, 11, 3, 8), roll, ["#1"]),
        # Tuesday: PR 2 (carol) too big at once, then unreviewed: the week's 3rd nudge
        (utc(2026, 11, 3, 10), nudge, ["#2"]),
        (utc(2026, 11, 3, 14), nudge, ["#2"]),
        # Wednesday: PR 1 reviewed, PR 2 snoozed at 07:30: nothing left to list at 08:00;
        # PR 3's breach at 16:00 is over the budget of 3: folded, listed in the roll-ups
        (utc(2026, 11, 5, 8), roll, ["#2", "#3", "#2"]),
        # the off-target alert of Friday 09:00 was the week's 5th: held back, and listed
        (utc(2026, 11, 6, 8), roll, ["#2", "#3", "#2", off]),
        # PRs 1 and 3 merged on Friday; PR 4's breach (Friday 14:00) folded too
        (utc(2026, 11, 7, 8), roll, ["#2", "#4", "#2"]),
        (utc(2026, 11, 8, 8), roll, ["#2", "#4", "#2"]),
        (utc(2026, 11, 9, 8), roll, ["#2", "#4", "#2"]),
        # the syncs of 06:00, 12:00 (the restarted process) and 18:00 got 401: one notice;
        # the next sync works: one recovery notice
        (utc(2026, 11, 9, 18), "notice:failing", []),
        (utc(2026, 11, 10, 0), "notice:recovered", []),
        (utc(2026, 11, 10, 8), roll, ["#2", "#4", "#2"]),
        # week 46: a fresh budget; PRs 2 and 4 merged at 09:00
        (utc(2026, 11, 10, 13), nudge, ["#5"]),
        (utc(2026, 11, 11, 8), roll, ["#5"]),
        (utc(2026, 11, 12, 8), roll, ["#5"]),
        # back on target 8 days after going off (after the 7-day cool-down): posted
        (utc(2026, 11, 13, 8), alert, []),
        (utc(2026, 11, 13, 8), roll, ["#5"]),
        (utc(2026, 11, 14, 8), roll, ["#5"]),
        (utc(2026, 11, 15, 8), roll, ["#5"]),
    ]

    def held(lt: str) -> list[tuple[datetime, str, list[str]]]:
        return [(t, k, [p.format(lt=lt) for p in prs]) for t, k, prs in expected]

    assert slack_log == held("&lt;")
    # Teams: the same, plus the weekly digest the channel subscribed to (Mondays 09:00)
    digests = [(utc(2026, 11, 2, 8), "digest", []), (utc(2026, 11, 9, 8), "digest", [])]
    assert teams_log == sorted(
        held("<") + digests, key=lambda e: (e[0], e[1] != "digest" and e[1] != "alert")
    )
    keys = [
        str(((m.get("metadata") or {}).get("event_payload") or {}).get("key")) for m in slack_msgs
    ]
    assert len(keys) == len(set(keys)), "nothing posted twice, across the restart"

    # the author named in nudges and roll-ups: a mention when the identity mapping knows them
    first = slack_msgs[0]["blocks"][2]["text"]["text"]
    assert first.endswith(f"· by <@{ALICE_SLACK}>"), first
    assert "&lt;b&gt;&amp;" in first  # the title as typed, escaped
    size = next(m for m in slack_msgs if slack_prs(m) == ["#2"])["blocks"][2]["text"]["text"]
    assert size.endswith("· by carol"), size
    for a in teams_msgs:
        assert_valid_card(card_of(a))
    nudge_card = card_of(next(a for a in teams_msgs if teams_kind(a) == nudge))
    assert nudge_card["msteams"] == {
        "entities": [
            {
                "type": "mention",
                "text": "<at>alice</at>",
                "mentioned": {"id": ALICE_TEAMS, "name": "alice"},
            }
        ]
    }
    line = next(el["text"] for el in nudge_card["body"] if el.get("text", "").startswith("- "))
    assert line.endswith("· by <at>alice</at>"), line
    carol_card = card_of([a for a in teams_msgs if teams_kind(a) == nudge][1])
    assert "msteams" not in carol_card
    assert any(el.get("text", "").endswith("· by carol") for el in carol_card["body"])

    # the noise budget: at most 3 alerts and nudges a week in each conversation
    with f() as s:
        runs = list(s.scalars(select(NoticeRun).where(NoticeRun.kind != "rollup")))
        events = list(s.scalars(select(AlertEvent).order_by(AlertEvent.evaluated_at)))
    for platform, conversation in (("slack", SLACK), ("teams", TEAMS)):
        mine = [r for r in runs if (r.platform, r.channel_id) == (platform, conversation)]
        posted = [(r.week, r.kind) for r in mine if r.status == "posted"]
        assert posted == [("2026-W45", nudge)] * 3 + [("2026-W46", nudge), ("2026-W46", alert)]
        folded = [(r.week, r.kind) for r in mine if r.status == "folded"]
        assert sorted(folded) == [("2026-W45", nudge), ("2026-W45", nudge), ("2026-W45", alert)]
        assert all(r.rolled_up_at is not None for r in mine if r.status == "folded")

    # the calibration preview, with the team's target, counts the alerts the run sent
    assert [e.crossing for e in events] == ["off target", "recovered"]
    with f() as s:
        preview = alert_reports.preview(
            TeamEngine(s, TEAM), "first-review", Target("<", 4 * 3600.0), END
        )
    assert [(c.at, c.kind) for c in preview.sent] == [
        (e.evaluated_at.replace(tzinfo=UTC), e.crossing) for e in events
    ]
    # and as a lead asks for it in chat, with the team's target
    clock.now = END
    said = chat.alert_preview("payments", "first-review", None).text
    assert "would have fired 2 times: Nov 6 (off target), Nov 13 (recovered)" in said, said
