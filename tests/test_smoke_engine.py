from zoneinfo import ZoneInfo

from bot.metrics.engine import TeamEngine
from bot.metrics.periods import parse_period
from bot.reports.cards import build_card
from tests.factories import H, T, now_utc, pr, setup_team


def test_cycle_time_one_pr(session):
    team = setup_team(session)
    pr(
        session,
        created=T("2026-11-03 10:00"),
        merged=T("2026-11-04 10:00"),
        first_commit=T("2026-11-03 08:00"),
        reviews=[("bob", "APPROVED", T("2026-11-03 12:00"))],
    )
    session.commit()
    eng = TeamEngine(session, team)
    p = parse_period("2026-W45", ZoneInfo("UTC"), now_utc("2026-11-20T00:00:00"))
    mv = eng.value("cycle-time", p)
    assert mv.n == 1
    assert mv.value == H(26).total_seconds()
    assert mv.breakdown["coding"] == H(2).total_seconds()
    assert mv.breakdown["pickup"] == H(2).total_seconds()
    assert mv.breakdown["review"] == H(22).total_seconds()
    card = build_card(eng, "review-coverage", p)
    assert card.value == 1.0 and card.status == "on target"
