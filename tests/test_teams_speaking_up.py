"""Agreement nudges and threshold alerts posted to a Teams channel through the Teams poster
and the fake connector on loopback, when Teams fails: a post Teams did not take (5xx on every
attempt) is posted at the next pass without looking (a Teams bot cannot look); a post whose
answer was lost (it may have arrived) is not repeated and is settled, not retried forever.
And the authors in a Slack and a Teams nudge: a mention where the identity mapping knows them,
the GitHub login otherwise, never both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.renderers import adaptive
from bot.renderers import blocks as kit
from bot.reports.agreements import BreachLine, build_report
from bot.scheduler.agreements import AgreementJobs
from bot.scheduler.alerts import deliver_alert
from bot.settings import Agreements, Config, Person, TeamConfig
from bot.store import channels
from bot.store.models import AlertDelivery, AlertEvent, NoticeRun, Team
from bot.store.session import session_factory
from tests import factories as fx
from tests.fakes.teams import FakeTeams
from tests.scheduler_fakes import offline_posters, setup_org
from tests.test_teams import assert_valid_card
from tests.test_teams_delivery import poster as teams_poster

CHANNEL = "19:payments@thread.tacv2"
TEAM = TeamConfig(
    name="payments",
    timezone="Europe/Berlin",
    repos=("acme/api",),
    agreements=Agreements(pr_size_under=400),
)
ORG = Config((TEAM,), people=(Person("alice", slack="U0ALICE01", teams="aad-alice"),))
NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)  # Tuesday, after the day's roll-up time


@pytest.fixture
def f(engine):
    factory = session_factory(engine)
    ids = setup_org(factory, ORG)
    with factory() as s:
        channels.set_channel_team(
            s,
            platform="teams",
            channel_id=CHANNEL,
            team_id=ids["payments"],
            set_by="aad-lead",
            now=NOW.replace(tzinfo=None),
        )
        fx.pr(s, created=datetime(2026, 11, 3, 9), merged=None, state="open", additions=900)
        s.commit()
    return factory


def team_id(f) -> int:
    with f() as s:
        found = s.scalar(select(Team.id).where(Team.name == "payments"))
    assert found is not None
    return found


def announce(jobs: AgreementJobs, f, now: datetime) -> int:
    jobs.check(TEAM, now)
    return jobs.announce(TEAM, team_id(f), now)


def nudges(f) -> list[NoticeRun]:
    with f() as s:
        return list(s.scalars(select(NoticeRun).where(NoticeRun.kind == "agreement")))


def test_a_nudge_teams_did_not_take_is_posted_at_the_next_pass(f):
    with FakeTeams() as teams:
        jobs = AgreementJobs(f, ORG, {"teams": teams_poster(teams, f, max_attempts=2)})
        teams.server_error(503, times=2)  # every attempt of the first pass
        assert announce(jobs, f, NOW) == 0
        [run] = nudges(f)
        assert run.status == "unsent"
        assert teams.posted(CHANNEL) == []
        assert announce(jobs, f, NOW + timedelta(minutes=15)) == 1
        [sent] = teams.posted(CHANNEL)
        assert announce(jobs, f, NOW + timedelta(minutes=30)) == 0
        assert len(teams.posted(CHANNEL)) == 1
    card = sent.activity["attachments"][0]["content"]
    assert_valid_card(card)
    assert sent.activity["summary"] == "Working agreement missed · payments"
    assert [r.status for r in nudges(f)] == ["posted"]


def test_a_nudge_whose_answer_was_lost_is_not_posted_again(f):
    with FakeTeams() as teams:
        teams.hold_after_post = 1.0  # Teams takes the post; its answer comes too late
        jobs = AgreementJobs(f, ORG, {"teams": teams_poster(teams, f, timeout=0.3, max_attempts=1)})
        assert announce(jobs, f, NOW) == 0
        assert nudges(f)[0].status == "failed"  # unclear: it may have arrived
        teams.hold_after_post = 0.0
        for minutes in (15, 30, 45):  # Teams cannot say whether it arrived: settled, once
            assert announce(jobs, f, NOW + timedelta(minutes=minutes)) == 0
        assert len(teams.posted(CHANNEL)) == 1
    assert [r.status for r in nudges(f)] == ["skipped"]


def alert_event(f, days_ago: int) -> int:
    with f() as s:
        event = AlertEvent(
            team_id=team_id(f),
            kpi="change-failure-rate",
            evaluated_at=NOW.replace(tzinfo=None) - timedelta(days=days_ago),
            crossing="off target",
            value=0.3,
            n=10,
            target_op="<=",
            target_value=0.15,
        )
        s.add(event)
        s.commit()
        return event.id


def deliver(f, poster, event_id: int, now: datetime) -> str:
    return deliver_alert(
        f,
        poster,
        event_id,
        CHANNEL,
        {"type": "message", "text": "off target"},
        holder="h",
        now=now,
        claim_ttl=timedelta(minutes=5),
        history_back=timedelta(hours=1),
        noise_budget=5,
        zone=TEAM.zone,
        text="CFR off target",
    )


def test_an_alert_teams_did_not_take_is_posted_next_and_a_lost_answer_is_not_repeated(f):
    first, second = alert_event(f, 1), alert_event(f, 0)
    with FakeTeams() as teams:
        poster = teams_poster(teams, f, max_attempts=2)
        teams.server_error(503, times=2)
        assert deliver(f, poster, first, NOW) == "failed"
        assert deliver(f, poster, first, NOW + timedelta(minutes=1)) == "posted"
        assert deliver(f, poster, first, NOW + timedelta(minutes=2)) == "busy"
        assert len(teams.posted(CHANNEL)) == 1

        teams.hold_after_post = 1.0
        slow = teams_poster(teams, f, timeout=0.3, max_attempts=1)
        assert deliver(f, slow, second, NOW) == "failed"
        teams.hold_after_post = 0.0
        assert deliver(f, poster, second, NOW + timedelta(minutes=1)) == "skipped"
        assert deliver(f, poster, second, NOW + timedelta(minutes=2)) == "busy"
        assert len(teams.posted(CHANNEL)) == 2  # the second once, by the lost attempt
    with f() as s:
        rows = {d.event_id: d for d in s.scalars(select(AlertDelivery))}
        runs = {r.key: r.status for r in s.scalars(select(NoticeRun))}
    assert (rows[first].status, rows[second].status) == ("posted", "skipped")
    assert "cannot tell whether an earlier attempt arrived" in (rows[second].detail or "")
    assert runs == {str(first): "posted", str(second): "skipped"}


def line(number: int, author: str | None) -> BreachLine:
    return BreachLine(
        "payments",
        "pr_size_under",
        number,
        "acme/api",
        number,
        f"Change {number}",
        f"https://github.com/acme/api/pull/{number}",
        900,
        400,
        author=author,
    )


def test_authors_are_mentioned_where_the_identity_mapping_knows_them():
    report = build_report(TEAM, "nudge", [])
    report = type(report)(
        report.team,
        "nudge",
        report.agreements,
        (line(1, "alice"), line(2, "carol_<b>"), line(3, None), line(4, "alice")),
    )
    posters = offline_posters()
    slack = posters["slack"].render_agreements(report, kit.GITHUB_COM, {"alice": "U0ALICE01"})
    texts = [b["text"]["text"] for b in slack["blocks"] if b["type"] == "section"]
    assert [t.rsplit(" · ", 1)[-1] for t in texts] == [
        "by <@U0ALICE01>",
        "by carol_&lt;b&gt;",
        "900 lines",  # no author known: nothing said
        "by <@U0ALICE01>",
    ]
    # not a Slack id: shown as text, never a mention
    odd = kit.agreements(report, mentions={"alice": "<!channel>"})
    assert "<!channel>" not in str(odd) and "by &lt;!channel&gt;" in str(odd)

    teams = posters["teams"].render_agreements(report, kit.GITHUB_COM, {"alice": "aad-alice"})
    card = teams["attachments"][0]["content"]
    assert_valid_card(card)
    texts = [el["text"] for el in card["body"] if el.get("text", "").startswith("- ")]
    assert [t.rsplit(" · ", 1)[-1] for t in texts] == [
        "by <at>alice</at>",
        "by carol\\_\\<b\\>",
        "900 lines",
        "by <at>alice</at>",
    ]
    assert card["msteams"]["entities"] == [  # one entity per person mentioned
        {
            "type": "mention",
            "text": "<at>alice</at>",
            "mentioned": {"id": "aad-alice", "name": "alice"},
        }
    ]
    # without the mapping (the chat command's list): the login, and no entities
    plain = adaptive.agreements(report)
    assert "msteams" not in plain and "by alice" in str(plain)
