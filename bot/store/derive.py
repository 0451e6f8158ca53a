"""Derived deployment data: which merged PRs each deployment contains, and rollbacks.

METRICS.md: a deployment *contains* the commits reachable from its commit but not from the
previous successful production deployment of the same repository; the first deployment ever
seen contains only the reachable commits committed in the 7 days before it finished. A
deployment is *rolled back* when a later successful production deployment of the same
repository deploys a strict ancestor of its commit.

The walk uses the stored commit graph (``commits``: the default branch's history, and the
history of deployed commits on other branches that ``kpibot sync`` fetches) with generation
numbers, so it visits only the commits between two deployments. A deployment whose commit, or
whose path back to the previous deployment, is not in the graph has *unknown contents*
(``contents_unknown``): it credits no PR and is never judged a rollback. Contents are never
guessed from merge times.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from bot.store.models import (
    Commit,
    Deployment,
    DeploymentPullRequest,
    PullRequest,
)

FIRST_DEPLOYMENT_LOOKBACK = timedelta(days=7)
ROLLBACK_LOOKBACK = timedelta(days=30)


@dataclass
class Graph:
    """The stored commit graph of a repository. A parent not in ``parents`` is beyond the
    edge of what is known: a walk that needs to go past it cannot give an exact answer, and
    the walks below then answer ``None`` (unknown) instead of guessing."""

    parents: dict[str, list[str]]
    when: dict[str, datetime | None]
    generation: dict[str, int]

    def __contains__(self, sha: str) -> bool:
        return sha in self.parents

    def _complete(self, sha: str) -> bool:
        return all(p in self.parents for p in self.parents[sha])

    def difference(self, head: str, base: str) -> set[str] | None:
        """Commits reachable from ``head`` but not from ``base`` (git's ``base..head``), or
        None when the graph does not know enough to tell: ``head`` or ``base`` is not in it,
        or the walk meets a commit (reachable from only one side) whose parents are not."""
        if head not in self or base not in self:
            return None
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
        # commit of lower generation than everything still queued. That holds only through
        # known parents: a commit seen from one side only, with a parent beyond the edge, may
        # lead anywhere (into the other side's history too), so the answer is unknown.
        if any(f != A | B and not self._complete(s) for s, f in flags.items()):
            return None
        return {s for s in out if not flags[s] & B}

    def reachable(self, head: str, since: datetime | None = None) -> set[str] | None:
        """Commits reachable from ``head`` (committed at or after ``since``), or None when the
        walk meets a commit whose parents are not in the graph."""
        if head not in self:
            return None
        out: set[str] = set()
        stack = [head]
        while stack:
            sha = stack.pop()
            if sha in out:
                continue
            if sha not in self:
                return None
            when = self.when.get(sha)
            if since is not None and when is not None and when < since:
                continue
            out.add(sha)
            stack.extend(self.parents[sha])
        return out

    def is_strict_ancestor(self, ancestor: str, of: str) -> bool:
        """True when the known graph has a path from ``of`` down to ``ancestor``."""
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

    def add(self, commits: Iterable[tuple[str, Sequence[str], datetime | None]]) -> None:
        """Commits fetched after loading (sha, parents, committed), generations updated."""
        fresh = []
        for sha, ps, when in commits:
            if sha not in self.parents:
                self.parents[sha] = list(ps)
                self.when[sha] = when
                fresh.append(sha)
        if fresh:
            self.generation = _generations(self.parents)


@dataclass(frozen=True)
class Deployed:
    """A successful production deployment, as contents are computed from it."""

    commit_sha: str
    finished_at: datetime


def contents(graph: Graph, dep: Deployed, prev: Deployed | None) -> set[str] | None:
    """The commits ``dep`` contains (METRICS.md, Deployments), or None when unknown.

    ``prev`` is the previous successful production deployment of the repository. The first
    one contains the reachable commits of the 7 days before it finished; a redeploy of the
    same commit or of a strict ancestor of ``prev``'s (a rollback) contains nothing; otherwise
    the commits reachable from it but not from ``prev``. Unknown when the commit, or the path
    back to ``prev``, is not in the graph.
    """
    if dep.commit_sha not in graph:
        return None
    if prev is None:
        return graph.reachable(dep.commit_sha, since=dep.finished_at - FIRST_DEPLOYMENT_LOOKBACK)
    if dep.commit_sha == prev.commit_sha or graph.is_strict_ancestor(
        dep.commit_sha, prev.commit_sha
    ):
        return set()
    return graph.difference(dep.commit_sha, prev.commit_sha)


def _generations(parents: dict[str, list[str]]) -> dict[str, int]:
    """Generation numbers (1 + the highest of the known parents'), iteratively: histories are
    deep."""
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
    return gen


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
    return Graph(parents, when, _generations(parents))


def successful_deployments(
    session: Session, repository_id: int, production_envs: Sequence[str]
) -> list[Any]:
    """A repository's successful production deployments, in the order contents follow."""
    return list(
        session.execute(
            select(
                Deployment.id,
                Deployment.commit_sha,
                Deployment.started_at,
                Deployment.finished_at,
                Deployment.contents_computed_at,
                Deployment.contents_unknown,
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


def contents_at(graph: Graph, deps: Sequence[Any], i: int) -> set[str] | None:
    """:func:`contents` of ``deps[i]`` (rows of :func:`successful_deployments`)."""
    d = deps[i]
    prev = deps[i - 1] if i > 0 else None
    return contents(
        graph,
        Deployed(d.commit_sha, d.finished_at),
        Deployed(prev.commit_sha, prev.finished_at) if prev is not None else None,
    )


def derive_repository(
    session: Session, repository_id: int, production_envs: Sequence[str], full: bool = False
) -> int:
    """Recompute contents and rollbacks of a repository's production deployments.

    Deployments from the first one not yet computed onwards are recomputed (all of them when
    ``full``), and from the first one with unknown contents the graph now knows enough for:
    a later sync that fetched its history. Returns the number of deployments computed.
    """
    deps = successful_deployments(session, repository_id, production_envs)
    if not deps:
        return 0
    first_todo = (
        0
        if full
        else next((i for i, d in enumerate(deps) if d.contents_computed_at is None), len(deps))
    )
    unknown_before = [i for i in range(first_todo) if deps[i].contents_unknown]
    if first_todo == len(deps) and not unknown_before:
        return 0
    graph = load_graph(session, repository_id)
    for i in unknown_before:
        if contents_at(graph, deps, i) is not None:
            first_todo = i
            break
    if first_todo == len(deps):
        return 0
    by_sha: dict[str, list[int]] = {}
    for pr_id, sha in session.execute(
        select(PullRequest.id, PullRequest.merge_commit_sha).where(
            PullRequest.repository_id == repository_id,
            PullRequest.merged_at.is_not(None),
            PullRequest.merge_commit_sha.is_not(None),
        )
    ):
        by_sha.setdefault(sha, []).append(pr_id)

    todo = deps[first_todo:]
    session.execute(
        delete(DeploymentPullRequest).where(
            DeploymentPullRequest.deployment_id.in_([d.id for d in todo])
        )
    )
    now = max(d.finished_at for d in deps)
    links: list[dict[str, int]] = []
    unknown = {d.id: bool(d.contents_unknown) for d in deps}
    for i in range(first_todo, len(deps)):
        d = deps[i]
        shas = contents_at(graph, deps, i)
        # unknown contents credit no PR; they are never guessed from merge times
        unknown[d.id] = shas is None
        pr_ids = {pid for s in shas or () for pid in by_sha.get(s, ())}
        links.extend({"deployment_id": d.id, "pull_request_id": p} for p in sorted(pr_ids))

    # rollbacks: a later deployment (within the lookback) of a strict ancestor. Recompute
    # every deployment a new one can reach (those within the lookback before the first one to
    # do) against every later deployment, so that each keeps its *earliest* rollback; older
    # deployments keep what was stored. One with unknown contents is never judged a rollback.
    rolled: dict[int, datetime] = {}
    anchor = deps[max(0, first_todo - 1)].finished_at - ROLLBACK_LOOKBACK
    start_check = next(i for i, d in enumerate(deps) if d.finished_at >= anchor)
    for j in range(max(1, start_check), len(deps)):
        dj = deps[j]
        if unknown[dj.id]:
            continue
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
    for flag in (True, False):
        ids = [d.id for d in todo if unknown[d.id] is flag]
        for chunk in range(0, len(ids), 5000):
            session.execute(
                update(Deployment)
                .where(Deployment.id.in_(ids[chunk : chunk + 5000]))
                .values(contents_computed_at=now, contents_unknown=flag)
            )
    return len(todo)


def derive_all(session: Session, envs_by_repo: dict[int, set[str]], full: bool = False) -> int:
    total = 0
    for repo_id, envs in envs_by_repo.items():
        total += derive_repository(session, repo_id, sorted(envs), full=full)
    return total
