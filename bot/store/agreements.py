"""The store side of working agreements: which breaches were seen, announced and snoozed,
and which PRs a lead excluded (with who and why).

A breach row is keyed by (team, PR, agreement) and announced at most once, whatever happens
to the PR afterwards: ``pending`` -> ``claimed`` (a pass took it, under a notice key) ->
``announced`` | ``folded`` (over the noise budget: only the roll-up lists it). A row leaves
the breach (``resolved_at``) when a check no longer finds it and comes back when it does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session

from bot.store.models import AgreementBreach, PullRequest, PullRequestExclusion, Repository
from bot.store.session import utc


def record_check(
    session: Session, team_id: int, found: Iterable[tuple[int, str, datetime]], now: datetime
) -> int:
    """Store one check's breaches, (PR id, agreement, since) each: new ones ``pending``; the
    team's rows not found any more are resolved. Returns how many are new."""
    now = utc(now)
    rows = {
        (r.pull_request_id, r.agreement): r
        for r in session.scalars(
            select(AgreementBreach).where(
                AgreementBreach.team_id == team_id,
                or_(AgreementBreach.resolved_at.is_(None), AgreementBreach.status == "pending"),
            )
        )
    }
    current = {(pr, agreement): since for pr, agreement, since in found}
    new = 0
    missing = [k for k in current if k not in rows]
    if missing:  # rows resolved earlier and not pending: back in breach, never announced again
        old = {
            (r.pull_request_id, r.agreement): r
            for r in session.scalars(
                select(AgreementBreach).where(
                    AgreementBreach.team_id == team_id,
                    AgreementBreach.pull_request_id.in_([k[0] for k in missing]),
                )
            )
        }
        rows.update({k: v for k, v in old.items() if k in current})
    fresh = []
    for key, since in current.items():
        row = rows.get(key)
        if row is None:
            fresh.append(
                {
                    "team_id": team_id,
                    "pull_request_id": key[0],
                    "agreement": key[1],
                    "since": utc(since),
                    "seen_at": now,
                    "status": "pending",
                }
            )
        elif row.resolved_at is not None:
            row.resolved_at = None
    if fresh:  # one executemany: a first check of a big team finds thousands
        session.execute(insert(AgreementBreach), fresh)
        new = len(fresh)
    for key, row in rows.items():
        if key not in current and row.resolved_at is None:
            row.resolved_at = now
    session.flush()
    return new


def claim_pending(
    session: Session, team_id: int, now: datetime
) -> tuple[str, list[AgreementBreach]] | None:
    """The breaches a pass announces: an earlier pass's unfinished claim first (resumed under
    its notice key), else every pending breach still open and not snoozed, claimed under a new
    key. None: nothing to announce."""
    now = utc(now)
    claimed = list(
        session.scalars(
            select(AgreementBreach)
            .where(AgreementBreach.team_id == team_id, AgreementBreach.status == "claimed")
            .order_by(AgreementBreach.id)
        )
    )
    if claimed:
        return claimed[0].notice_key or "", claimed
    pending = list(
        session.scalars(
            select(AgreementBreach)
            .where(
                AgreementBreach.team_id == team_id,
                AgreementBreach.status == "pending",
                AgreementBreach.resolved_at.is_(None),
                or_(AgreementBreach.snoozed_until.is_(None), AgreementBreach.snoozed_until <= now),
            )
            .order_by(AgreementBreach.id)
        )
    )
    if not pending:
        return None
    # a breach is claimed once: the smallest id names the batch for good
    key = f"agreements:{team_id}:{pending[0].id}"
    for row in pending:
        row.status = "claimed"
        row.notice_key = key
    session.flush()
    return key, pending


def settle(session: Session, key: str, status: str, now: datetime) -> None:
    """The claimed breaches of ``key`` are ``announced`` or ``folded``."""
    session.execute(
        update(AgreementBreach)
        .where(AgreementBreach.notice_key == key, AgreementBreach.status == "claimed")
        .values(status=status, announced_at=utc(now))
    )


def snoozed(session: Session, team_id: int, now: datetime) -> dict[int, datetime]:
    """PR id -> end of its snooze, for the team's PRs snoozed at ``now``."""
    now = utc(now)
    out: dict[int, datetime] = {}
    for pr, until in session.execute(
        select(AgreementBreach.pull_request_id, AgreementBreach.snoozed_until).where(
            AgreementBreach.team_id == team_id, AgreementBreach.snoozed_until > now
        )
    ):
        out[pr] = max(out.get(pr, until), until)
    return out


def snooze(
    session: Session, team_id: int, pr_id: int, by: str, now: datetime, length: timedelta
) -> datetime | None:
    """Snooze every open breach of a PR for the team; returns until when (None: the PR is in
    no breach of the team)."""
    until = utc(now) + length
    result = session.execute(
        update(AgreementBreach)
        .where(
            AgreementBreach.team_id == team_id,
            AgreementBreach.pull_request_id == pr_id,
            AgreementBreach.resolved_at.is_(None),
        )
        .values(snoozed_until=until, snoozed_by=by)
    )
    return until if getattr(result, "rowcount", 0) else None


def exclude(
    session: Session,
    team_id: int,
    pr_id: int,
    *,
    platform: str,
    by: str,
    reason: str,
    now: datetime,
) -> bool:
    """Leave a PR out of the team's KPIs; False when it already was (the first reason stays)."""
    if session.get(PullRequestExclusion, (team_id, pr_id)) is not None:
        return False
    session.add(
        PullRequestExclusion(
            team_id=team_id,
            pull_request_id=pr_id,
            platform=platform,
            excluded_by=by,
            reason=reason,
            excluded_at=utc(now),
        )
    )
    session.flush()
    return True


def pull_request_label(session: Session, pr_id: int) -> str | None:
    """``owner/name#123`` of a PR, for confirmations (no source text: nothing to escape);
    None when it is unknown."""
    row = session.execute(
        select(Repository.full_name, PullRequest.number)
        .join(Repository, Repository.id == PullRequest.repository_id)
        .where(PullRequest.id == pr_id)
    ).first()
    return f"{row.full_name}#{row.number}" if row is not None else None
