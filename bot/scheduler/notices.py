"""Freshness notices (METRICS.md, Freshness): a source that fails ``FAILURES_TO_NOTICE``
runs in a row, or whose data is older than ``STALE_INTERVALS`` sync intervals, posts one
notice to each of its teams' conversations saying what failed and what to check; one more
when it recovers.

After every periodic sync, :meth:`SourceNotices.evaluate` applies the rule to each source
and records its state (a source that starts failing opens a new *episode*); every pass
(:meth:`SourceNotices.send`) posts what an episode owes each conversation through the one
exactly-once path (claim, post, record: ``source_notice_runs``), so a restart, or several
processes, never post a notice twice. A recovery is posted only where the failure was.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.ingest.sources import SourceKey, team_sources
from bot.metrics.freshness import is_failing
from bot.reports.freshness import SourceNotice, source_state
from bot.scheduler.posting import ConversationUnavailable, PlatformUnavailable, PostError
from bot.settings import TeamConfig
from bot.store import channels, digest_runs, source_health
from bot.store.models import SourceNoticeRun
from bot.store.session import aware, unit_of_work, utc

if TYPE_CHECKING:
    from bot.scheduler.jobs import DigestJobs

log = logging.getLogger("kpibot.scheduler")


class SourceNotices:
    """The freshness notices of a scheduler (its posters, holder, options and links)."""

    def __init__(self, jobs: DigestJobs) -> None:
        self.jobs = jobs

    def evaluate(self, now: datetime) -> list[tuple[SourceKey, str]]:
        """Apply the freshness rule to every recorded source at ``now`` (after a sync);
        returns the sources that changed state and how (``failing`` | ``recovered``)."""
        interval = self.jobs.options.sync_every
        changed: list[tuple[SourceKey, str]] = []
        with unit_of_work(self.jobs.factory) as s:
            for row in source_health.all_rows(s):
                key = SourceKey(row.source, row.scope)
                last = aware(row.last_success_at) if row.last_success_at else None
                failing = is_failing(
                    key, failures=row.failures, last_success=last, now=now, interval=interval
                )
                if failing != row.failing:
                    changed.append((key, "failing" if failing else "recovered"))
                    source_health.set_failing(s, row, failing)
                if key.polled and interval is not None:
                    row.next_run_at = utc(now + interval)
        for key, kind in changed:
            log.warning("%s: %s", key.label, "failing" if kind == "failing" else "recovered")
        return changed

    def send(self, now: datetime) -> int:
        """Post every notice an episode still owes a conversation; returns how many."""
        jobs = self.jobs
        config = jobs.config
        sent = 0
        with jobs.factory() as s:
            open_rows = [r for r in source_health.all_rows(s) if r.episode > 0]
            if not open_rows:
                return 0
            ids = channels.team_ids(s)
            done = {
                (r.source, r.scope, r.episode, r.kind, r.platform, r.channel_id): r.status
                for r in s.scalars(select(SourceNoticeRun))
            }
            plan: list[tuple[SourceNotice, str, str, int]] = []
            for row in open_rows:
                key = SourceKey(row.source, row.scope)
                kind = "failing" if row.failing else "recovered"
                teams = [t for t in config.teams if key in team_sources(t)]
                state = source_state(key, row, now, jobs.options.sync_every)
                for team in teams:
                    if team.name not in ids:
                        continue
                    for platform, conv in _conversations(s, team, ids[team.name]):
                        k = (row.source, row.scope, row.episode, kind, platform, conv)
                        if done.get(k) in digest_runs.DONE:
                            continue
                        if kind == "recovered":
                            failed = (row.source, row.scope, row.episode, "failing")
                            if done.get((*failed, platform, conv)) != "posted":
                                continue  # never told it failed: nothing to recover from
                        done[k] = "posted"  # one notice per conversation, whichever team
                        plan.append(
                            (SourceNotice(team.name, kind, state), platform, conv, row.episode)
                        )
        for notice, platform, conv, episode in plan:
            if sent and not jobs._alive():
                break
            sent += self._one(notice, platform, conv, episode, now)
        return sent

    def _one(
        self, notice: SourceNotice, platform: str, conv: str, episode: int, now: datetime
    ) -> bool:
        jobs = self.jobs
        poster = jobs.posters.get(platform)
        if poster is None:
            return False
        st = notice.state
        run_key = {
            "source": st.source,
            "scope": st.scope,
            "episode": episode,
            "kind": notice.kind,
            "platform": platform,
            "channel_id": conv,
        }
        claim = digest_runs.claim_notice(
            jobs.factory, run_key, jobs.holder, now, jobs.options.claim_ttl
        )
        if claim is None:
            return False
        key = f"notice:{st.source}:{st.scope}:{episode}:{notice.kind}"
        oldest = (aware(claim.claimed_at) - jobs.options.claim_ttl * 2).timestamp()
        try:
            if claim.retry:
                ts = poster.find_post(conv, key, oldest=oldest)
                if ts is not None:
                    jobs._finish(SourceNoticeRun, claim, "posted", now, ts=ts)
                    return False
            message = poster.render_notice(notice, jobs.links)
            ts = poster.post(conv, message, key=key, oldest=oldest)
        except ConversationUnavailable as exc:
            jobs._finish(SourceNoticeRun, claim, "skipped", now, detail=exc.error)
            log.warning(
                "could not post the %s notice of %s to %s: %s", notice.kind, st.label, conv, exc
            )
            return False
        except (PostError, PlatformUnavailable) as exc:
            jobs._finish(SourceNoticeRun, claim, "failed", now, detail=str(exc))
            log.warning(
                "could not post the %s notice of %s to %s: %s", notice.kind, st.label, conv, exc
            )
            return False
        jobs._finish(SourceNoticeRun, claim, "posted", now, ts=ts)
        log.info("posted the %s notice of %s to %s", notice.kind, st.label, conv)
        return True


def _conversations(s: Session, team: TeamConfig, team_id: int) -> list[tuple[str, str]]:
    """The team's conversations (:func:`bot.store.channels.team_conversations`)."""
    return channels.team_conversations(s, team_id, configured=team.channel)
