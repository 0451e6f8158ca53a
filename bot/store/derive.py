"""Derived deployment data: which merged PRs each deployment contains, and rollbacks.

METRICS.md: a deployment *contains* the commits reachable from its commit but not from the
previous successful production deployment of the same repository; the first deployment ever
seen contains only the reachable commits committed in the 7 days before it finished. A
deployment is *rolled back* when a later successful production deployment of the same
repository deploys a strict ancestor of its commit.

The walk uses the stored commit graph (``commits``) with generation numbers, so it visits only
the commits between two deployments. Where a deployment's commit is not in the graph, the PRs
merged into the default branch between the two deployments stand in for the commit walk.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from bot.store.models import (
    Commit,
    Deployment,
    DeploymentPullRequest,
    PullRequest,
    Repository,
)

FIRST_DEPLOYMENT_LOOKBACK = timedelta(days=7)
ROLLBACK_LOOKBACK = timedelta(days=30)


@dataclass
class Graph:
    parents: dict[str, list[str]]
    when: dict[str, datetime | None]
    generation: dict[str, int]

    def __contains__(self, sha: str) -> bool:
        return sha in self.parents

    def difference(self, head: str, base: str | None) -> set[str]:
        """Commits reachable from ``head`` but not from ``base`` (git's ``base..head``)."""
        if base is None or base not in self:
            return self.reachable(head)
        A, B = 1, 2
        flags: dict[str, int] = {}
        heap: list[tuple[int, str]] = []

        def push(sha: str, flag: int) -> None:
            old = flags.get(sha, 0)
            if old | flag != old:
                flags[sha] = old | flag
                heapq.heappush(heap, (-self.generation.get(sha, 0), sha))

        push(head, A)
        push(base, B)
        out: set[str] = set()
        while heap:
            if all(flags[s] & B for _, s in heap):
                break
            _, sha = heapq.heappop(heap)
            f = flags[sha]
            if f == A:
                out.add(sha)
            for p in self.parents.get(sha, ()):
                if p in self:
                    push(p, f)
        # commits popped as A-only before B reached them are still correct: B can only reach a
        # commit of lower generation than everything still queued
        return {s for s in out if not flags[s] & B}

    def reachable(self, head: str, since: datetime | None = None) -> set[str]:
        out: set[str] = set()
        stack = [head]
        while stack:
            sha = stack.pop()
            if sha in out or sha not in self:
                continue
            when = self.when.get(sha)
            if since is not None and when is not None and when < since:
                continue
            out.add(sha)
            stack.extend(self.parents[sha])
        return out

    def is_strict_ancestor(self, ancestor: str, of: str) -> bool:
        if ancestor == of or ancestor not in self or of not in self:
            return False
        target_gen = self.generation[ancestor]
        seen: set[str] = set()
        stack = [of]
        while stack:
            sha = stack.pop()
            if sha in seen:
                continue
            seen.add(sha)
            for p in self.parents.get(sha, ()):
                if p == ancestor:
                    return True
                if p in self and self.generation[p] > target_gen:
                    stack.append(p)
        return False


def load_graph(session: Session, repository_id: int) -> Graph:
    parents: dict[str, list[str]] = {}
    when: dict[str, datetime | None] = {}
    for sha, ps, committed, authored in session.execute(
        select(Commit.sha, Commit.parents, Commit.committed_at, Commit.authored_at).where(
            Commit.repository_id == repository_id
        )
    ):
        parents[sha] = ps.split() if ps else []
        when[sha] = committed or authored
    # generation numbers, iteratively (histories are deep)
    gen: dict[str, int] = {}
    for root in parents:
        if root in gen:
            continue
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            sha, expanded = stack.pop()
            if sha in gen:
                continue
            known = [p for p in parents.get(sha, ()) if p in parents]
            if expanded:
                gen[sha] = 1 + max((gen[p] for p in known), default=0)
                continue
            stack.append((sha, True))
            stack.extend((p, False) for p in known if p not in gen)
    return Graph(parents, when, gen)


def derive_repository(
    session: Session, repository_id: int, production_envs: Sequence[str], full: bool = False
) -> int:
    """Recompute contents and rollbacks of a repository's production deployments.

    Only deployments from the first one not yet computed onwards are recomputed, unless
    ``full``. Returns the number of deployments computed.
    """
    deps = list(
        session.execute(
            select(
                Deployment.id,
                Deployment.commit_sha,
                Deployment.started_at,
                Deployment.finished_at,
                Deployment.contents_computed_at,
            )
            .where(
                Deployment.repository_id == repository_id,
                Deployment.environment.in_(list(production_envs)),
                Deployment.status == "success",
                Deployment.finished_at.is_not(None),
            )
            .order_by(Deployment.finished_at, Deployment.id)
        )
    )
    if not deps:
        return 0
    first_todo = (
        0
        if full
        else next((i for i, d in enumerate(deps) if d.contents_computed_at is None), len(deps))
    )
    if first_todo == len(deps):
        return 0
    graph = load_graph(session, repository_id)
    default_branch = session.scalar(
        select(Repository.default_branch).where(Repository.id == repository_id)
    )
    merged = list(
        session.execute(
            select(
                PullRequest.id,
                PullRequest.merge_commit_sha,
                PullRequest.merged_at,
                PullRequest.base_branch,
            )
            .where(PullRequest.repository_id == repository_id, PullRequest.merged_at.is_not(None))
            .order_by(PullRequest.merged_at)
        )
    )
    by_sha: dict[str, list[int]] = {}
    for pr in merged:
        if pr.merge_commit_sha:
            by_sha.setdefault(pr.merge_commit_sha, []).append(pr.id)

    todo = deps[first_todo:]
    session.execute(
        delete(DeploymentPullRequest).where(
            DeploymentPullRequest.deployment_id.in_([d.id for d in todo])
        )
    )
    now = max(d.finished_at for d in deps)
    links: list[dict[str, int]] = []
    for i in range(first_todo, len(deps)):
        d = deps[i]
        prev = deps[i - 1] if i > 0 else None
        if d.commit_sha in graph:
            if prev is None:
                since = d.finished_at - FIRST_DEPLOYMENT_LOOKBACK
                shas = graph.reachable(d.commit_sha, since=since)
            else:
                shas = graph.difference(d.commit_sha, prev.commit_sha)
            pr_ids = {pid for s in shas for pid in by_sha.get(s, ())}
        else:
            cut = d.started_at or d.finished_at
            if prev is not None:
                # after the previous deployment's cut-off (its start), so that a PR merged
                # while that deployment ran lands in exactly one deployment
                lo = prev.started_at or prev.finished_at
                pr_ids = {
                    pr.id
                    for pr in merged
                    if lo < pr.merged_at <= cut and pr.base_branch == default_branch
                }
            else:
                lo = d.finished_at - FIRST_DEPLOYMENT_LOOKBACK
                pr_ids = {
                    pr.id
                    for pr in merged
                    if lo <= pr.merged_at <= cut and pr.base_branch == default_branch
                }
        links.extend({"deployment_id": d.id, "pull_request_id": p} for p in sorted(pr_ids))

    # rollbacks: a later deployment (within the lookback) of a strict ancestor. Recompute
    # every deployment a new one can reach (those within the lookback before the first one to
    # do) against every later deployment, so that each keeps its *earliest* rollback; older
    # deployments keep what was stored.
    rolled: dict[int, datetime] = {}
    anchor = deps[max(0, first_todo - 1)].finished_at - ROLLBACK_LOOKBACK
    start_check = next(i for i, d in enumerate(deps) if d.finished_at >= anchor)
    for j in range(max(1, start_check), len(deps)):
        dj = deps[j]
        k = j - 1
        while k >= start_check and dj.finished_at - deps[k].finished_at <= ROLLBACK_LOOKBACK:
            di = deps[k]
            if graph.is_strict_ancestor(dj.commit_sha, di.commit_sha) and di.id not in rolled:
                rolled[di.id] = dj.finished_at
            k -= 1

    link_table = cast(Table, DeploymentPullRequest.__table__)
    for chunk in range(0, len(links), 5000):
        session.execute(link_table.insert(), links[chunk : chunk + 5000])
    touched = {d.id for d in deps[start_check:]} | set(rolled)
    if touched:
        session.execute(
            update(Deployment).where(Deployment.id.in_(list(touched))).values(rolled_back_at=None)
        )
    for dep_id, when in rolled.items():
        session.execute(
            update(Deployment).where(Deployment.id == dep_id).values(rolled_back_at=when)
        )
    session.execute(
        update(Deployment)
        .where(Deployment.id.in_([d.id for d in todo]))
        .values(contents_computed_at=now)
    )
    return len(todo)


def derive_all(session: Session, envs_by_repo: dict[int, set[str]], full: bool = False) -> int:
    total = 0
    for repo_id, envs in envs_by_repo.items():
        total += derive_repository(session, repo_id, sorted(envs), full=full)
    return total
