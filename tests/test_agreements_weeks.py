"""Two simulated weeks of working agreements in Berlin (injected clock, the fake Slack, PRs
arriving as signed GitHub webhooks): each PR announced once per agreement, a snooze honoured,
the roll-up at 09:00 team time, the noise budget folding the rest into the roll-up, and a
restart mid-way sending nothing twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select

from bot.scheduler.jobs import SchedulerOptions
from bot.scheduler.service import SchedulerService
from bot.settings import Agreements, Config, Settings, TeamConfig
from bot.slack.app import create_app
from bot.store.models import NoticeRun, PullRequest, PullRequestExclusion, Repository, Review
from bot.store.session import make_engine, session_factory
from bot.surfaces.http import Server, slack_http_app
from tests.fakes.slack import BOT_TOKEN, TEAM_ID
from tests.scheduler_fakes import SchedulerSlack, poster_for, setup_org
from tests.slack_harness import SECRET, Harness

CHANNEL = "C0BERLIN01"
LEAD = "U0LEAD001"
TEAM = TeamConfig(
    name="berlin",
    timezone="Europe/Berlin",
    channel=CHANNEL,
    repos=("acme/api",),
    agreements=Agreements(
        first_review_within=4 * 3600, pr_size_under=400, open_pr_idle_for=3 * 86400
    ),
    noise_budget=3,
    leads=(LEAD,),
)
ORG = Config((TEAM,))


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


class SimClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


def open_pr(f: Any, number: int, at: datetime, *, size: int = 20, title: str | None = None) -> None:
    with f() as s:
        repo_id = s.scalar(select(Repository.id).where(Repository.full_name == "acme/api"))
        s.add(
            PullRequest(
                repository_id=repo_id,
                number=number,
                title=title or f"PR {number}",
                url=f"https://github.com/acme/api/pull/{number}",
                author_login="alice",
                state="open",
                created_at=naive(at),
                updated_at=naive(at),
                additions=size,
                deletions=0,
            )
        )
        s.commit()


def review(f: Any, number: int, at: datetime, who: str = "bob") -> None:
    with f() as s:
        pr_id = s.scalar(select(PullRequest.id).where(PullRequest.number == number))
        s.add(
            Review(
                pull_request_id=pr_id,
                provider_id=f"r{number}-{who}-{at.timestamp()}",
                author_login=who,
                state="COMMENTED",
                submitted_at=naive(at),
            )
        )
        pr = s.get(PullRequest, pr_id)
        assert pr is not None
        pr.updated_at = naive(at)
        s.commit()


def merge(f: Any, number: int, at: datetime) -> None:
    with f() as s:
        pr = s.scalar(select(PullRequest).where(PullRequest.number == number))
        assert pr is not None
        pr.state, pr.merged_at, pr.updated_at = "merged", naive(at), naive(at)
        s.commit()


def posted(slack: SchedulerSlack) -> list[dict[str, Any]]:
    out = []
    for m in slack.posts(CHANNEL):
        key = str(((m.get("metadata") or {}).get("event_payload") or {}).get("key"))
        out.append({"key": key, "ts": m["ts"], "text": m["text"], "blocks": m["blocks"]})
    return out


def pr_lines(message: dict[str, Any]) -> list[str]:
    """``#<number>`` of each PR line of a message, in order."""
    out = []
    for b in message["blocks"]:
        if b["type"] == "section" and b["text"]["text"].startswith("• "):
            out.append("#" + b["text"]["text"].split("#", 1)[1].split("|", 1)[0].split(">", 1)[0])
    return out


def slack_app(db_url: str, slack: SchedulerSlack, clock: SimClock) -> tuple[Harness, Server]:
    """The real Slack app over loopback HTTP (signed requests), on the simulated clock."""
    settings = Settings(
        database_url=db_url,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=slack.api_url,
    )
    app = create_app(settings, config=ORG, clock=clock, backoff=0.01)
    server = Server(slack_http_app(app), host="127.0.0.1", port=0, threads=4).start()
    return Harness(slack, server, app), server


def pr_id(f: Any, number: int) -> int:
    with f() as s:
        found = s.scalar(select(PullRequest.id).where(PullRequest.number == number))
    assert found is not None
    return found


def click(h: Harness, verb: str, f: Any, number: int, agreement: str, user: str) -> str:
    """Click an agreement button of the nudge in the channel; returns its response URL."""
    value = json.dumps({"t": "berlin", "pr": pr_id(f, number)}, separators=(",", ":"))
    r, url = h.click(
        f"{verb}:{pr_id(f, number)}:{agreement}",
        value,
        user=user,
        channel=CHANNEL,
        container={"type": "message", "is_ephemeral": False},
    )
    assert r.status_code == 200, r.text
    return url


def submit_reason(h: Harness, user: str, view: dict[str, Any], reason: str) -> Any:
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM_ID},
        "user": {"id": user, "team_id": TEAM_ID},
        "api_app_id": "A0KPIBOT",
        "view": {
            **view,
            "state": {
                "values": {"reason": {"value": {"type": "plain_text_input", "value": reason}}}
            },
        },
    }
    return h.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")


def test_two_weeks_of_agreements(db_url):
    eng = make_engine(db_url)
    f = session_factory(eng)
    setup_org(f, ORG)
    clock = SimClock(utc(2026, 11, 2, 0, 0))  # Monday; Berlin is UTC+1
    events: list[tuple[datetime, str, list[str]]] = []
    answers: list[tuple[datetime, str]] = []
    with SchedulerSlack() as slack:
        slack.add_channel(CHANNEL)
        h, server = slack_app(db_url, slack, clock)
        service = SchedulerService(
            Settings(), f, ORG, poster_for(slack), clock=clock, options=SchedulerOptions()
        )
        service.build(blocking=False)
        seen = 0
        end = utc(2026, 11, 16, 0, 0)
        while clock.now < end:
            now = clock.now
            if now == utc(2026, 11, 2, 8, 0):
                open_pr(f, 1, now)  # first review due 12:00
            if now == utc(2026, 11, 2, 9, 0):
                open_pr(f, 2, now, size=650)  # too big at once
            if now == utc(2026, 11, 3, 10, 0):
                review(f, 1, now)  # PR 1 reviewed: out of the first-review breach
            if now == utc(2026, 11, 3, 11, 0):
                open_pr(f, 3, now)  # first review due 15:00
            if now == utc(2026, 11, 4, 8, 30):
                # someone snoozes PR 2 for a day with the nudge's button
                url = click(h, "agreement_snooze", f, 2, "pr_size_under", "U0ALICE")
                assert "Snoozed acme/api#2 for a day" in h.answer(url).args["text"]
            if now == utc(2026, 11, 9, 10, 0):
                # not a lead: refused, nothing opens
                url = click(h, "agreement_exclude", f, 4, "first_review_within", "U0ALICE")
                assert "Only a workspace admin or a lead" in h.answer(url).args["text"]
                assert slack.calls_to("views.open") == []
                # the lead: a modal asks why, and the PR leaves the metrics and the roll-ups
                click(h, "agreement_exclude", f, 4, "first_review_within", LEAD)
                [opened] = slack.wait_for("views.open")
                view = (
                    json.loads(opened.args["view"])
                    if isinstance(opened.args["view"], str)
                    else opened.args["view"]
                )
                assert view["callback_id"] == "agreement_exclude"
                view["id"], view["hash"] = "V0EXCL01", "h1"
                r = submit_reason(h, LEAD, view, "  ")
                assert r.json()["response_action"] == "errors"  # a reason is required
                r = submit_reason(h, LEAD, view, "a spike, <b>not</b> delivery")
                assert r.status_code == 200 and not r.text.strip(), r.text
                with f() as s:
                    [ex] = s.scalars(select(PullRequestExclusion)).all()
                    assert (ex.excluded_by, ex.reason) == (LEAD, "a spike, <b>not</b> delivery")
            if now == utc(2026, 11, 5, 12, 0):
                open_pr(f, 4, now)  # the 4th nudge of the week: over the budget of 3
            if now == utc(2026, 11, 6, 12, 0):
                merge(f, 3, now)
            if now == utc(2026, 11, 9, 12, 0):
                # a restart: a new process after the old one stopped
                service.stop()
                service = SchedulerService(Settings(), f, ORG, poster_for(slack), clock=clock)
                service.build(blocking=False)
            if now == utc(2026, 11, 10, 9, 0):
                merge(f, 1, now)
                merge(f, 2, now)
                merge(f, 4, now)
                open_pr(f, 5, now + timedelta(hours=1))  # opened 10:00, due 14:00: a new week
            if now == utc(2026, 11, 11, 10, 0):
                review(f, 5, now)  # idle from here: 3 days later, Saturday 10:00
            assert service.tick()
            msgs = posted(slack)
            for m in msgs[seen:]:
                if m["key"] == "None":  # a person's confirmation, not a scheduled post
                    answers.append((now, m["text"]))
                else:
                    events.append((now, m["key"], pr_lines(m)))
            seen = len(msgs)
            clock.now += timedelta(minutes=15)
        service.stop()
        h.close()
        server.stop()
        h.app.close()
        eng.dispose()
        keys = slack.keys()
        assert len(keys) == len(set(keys)), "nothing is posted twice, across the restart"
    roll = "rollup"
    nudge = "agreement"
    got = [(when, key.split(":", 1)[0], prs) for when, key, prs in events]
    assert got == [
        # Monday: PR 2 too big at once, PR 1 unreviewed 4 h after opening, then PR 2 too
        (utc(2026, 11, 2, 9), nudge, ["#2"]),
        (utc(2026, 11, 2, 12), nudge, ["#1"]),
        (utc(2026, 11, 2, 13), nudge, ["#2"]),
        # roll-ups at 09:00 Berlin (08:00 UTC), grouped by agreement: first review, size, idle
        (utc(2026, 11, 3, 8), roll, ["#1", "#2", "#2"]),
        # PR 3's breach (Tuesday 15:00) was the week's 4th nudge: folded into this roll-up
        (utc(2026, 11, 4, 8), roll, ["#2", "#3", "#2"]),
        # PR 2 snoozed until Thursday 08:30: left out
        (utc(2026, 11, 5, 8), roll, ["#3"]),
        # Thursday and Friday's breaches (PR 2 idle, PR 4 unreviewed, PR 1 idle) all folded
        (utc(2026, 11, 6, 8), roll, ["#2", "#3", "#4", "#2", "#2"]),
        (utc(2026, 11, 7, 8), roll, ["#2", "#4", "#2", "#2", "#1"]),
        (utc(2026, 11, 8, 8), roll, ["#2", "#4", "#2", "#2", "#1"]),
        # PR 4 went idle on Sunday: still week 45, folded
        (utc(2026, 11, 9, 8), roll, ["#2", "#4", "#2", "#2", "#1", "#4"]),
        # PR 4 excluded by the lead on Monday 10:00: in no roll-up since
        (utc(2026, 11, 10, 8), roll, ["#2", "#2", "#2", "#1"]),
        # week 46: a fresh budget, so PR 5's breach is posted
        (utc(2026, 11, 10, 14), nudge, ["#5"]),
        (utc(2026, 11, 11, 8), roll, ["#5"]),
        # reviewed Wednesday 10:00: nothing open until it has been idle 3 days
        (utc(2026, 11, 14, 10), nudge, ["#5"]),
        (utc(2026, 11, 15, 8), roll, ["#5"]),
    ]
    # the exclusion is confirmed in the channel, naming the lead, the reason kept private
    # (posted after the modal closed: it may arrive a tick later)
    assert [text for _, text in answers] == [
        f"acme/api#4 is left out of berlin's metrics from now on, by <@{LEAD}> (the reason "
        "is recorded)."
    ]
    with f() as s:
        runs = list(s.scalars(select(NoticeRun).order_by(NoticeRun.id)))
    folded = [r for r in runs if r.status == "folded"]
    # PR 3 first review, PR 2 idle, PR 4 first review, PR 1 idle, PR 3 idle (Friday 11:00,
    # merged before the next roll-up), PR 4 idle
    assert [r.week for r in folded] == ["2026-W45"] * 6
    assert all(r.rolled_up_at is not None for r in folded)
    assert sum(1 for r in runs if r.kind == nudge and r.status == "posted") == 5
    first = events[3]
    assert first[1] == "rollup:berlin:2026-11-03"


def test_titles_are_escaped_and_every_message_has_a_fallback(engine):
    f = session_factory(engine)
    setup_org(f, ORG)
    clock = SimClock(utc(2026, 11, 2, 12, 0))
    open_pr(f, 1, utc(2026, 11, 2, 8), title="Fix <script> & <!channel> *bold*")
    with SchedulerSlack() as slack:
        slack.add_channel(CHANNEL)
        service = SchedulerService(Settings(), f, ORG, poster_for(slack), clock=clock)
        assert service.tick()
        # the nudge, then the day's roll-up (due at 09:00 Berlin, still within the grace)
        msg, rollup = slack.posts(CHANNEL)
    assert pr_lines(msg) == pr_lines(rollup) == ["#1"]
    assert msg["text"]
    body = json.dumps(msg["blocks"])
    assert "&lt;script&gt; &amp; &lt;!channel&gt;" in body
    assert "<!channel>" not in body
    actions = [b for b in msg["blocks"] if b["type"] == "actions"]
    assert [e["text"]["text"] for e in actions[0]["elements"]] == [
        "Open PR",
        "Snooze 1 day",
        "Exclude from metrics",
    ]
    assert actions[0]["elements"][0]["url"] == "https://github.com/acme/api/pull/1"
