"""The demo organisation: three teams in three time zones with six months of realistic,
deterministic history, so every command has data without any tokens.

The data is generated from a fixed seed relative to an anchor date (today by default), and
loaded through the same store paths real syncs use (teams from kpibot.yml, deployment
contents and rollbacks derived from the commit graph).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.ingest.sources import team_sources
from bot.settings import Config, parse_config
from bot.store import population, source_health
from bot.store.derive import derive_all
from bot.store.models import (
    ActionItem,
    Commit,
    Deployment,
    Incident,
    PullRequest,
    PullRequestFile,
    Repository,
    Review,
    Sprint,
    SprintItem,
    Team,
)
from bot.store.teams import production_envs_by_repo, sync_teams

SEED = 20261122
DAYS = 183

DEMO_CONFIG = """\
# kpibot team configuration (written by `kpibot demo`; edit freely).
# Reference: README.md, section "Configuration".
teams:
  - name: payments
    timezone: Europe/Berlin
    repos: [acme/payments-api, acme/payments-web]
    production_environments: [production]
    deployments: {source: github-deployments}
    incidents: {source: github-issues, labels: [incident]}
    sprints: {source: jira, board: 12}
    exclude_authors: ["release-robot"]
    ignore_paths: ["**/generated/**"]
    targets: {cycle-time: 48h, first-review: 4h, review-coverage: 95%}
    digests: {weekly: "mon 09:00", monthly: "1 09:00"}
    dora_edition: 2023

  - name: mobile
    timezone: America/New_York
    repos: [acme/mobile-app]
    production_environments: [production, app-store]
    deployments: {source: releases}
    incidents: {source: github-issues, labels: [incident, sev1]}
    sprints: {source: github-milestones}
    targets: {cycle-time: 72h, pr-size: 500}
    digests: {weekly: "mon 09:30", monthly: "1 10:00"}
    dora_edition: 2021

  - name: platform
    timezone: Asia/Tokyo
    repos: [acme/platform-infra, acme/platform-tools]
    deployments: {source: workflow, workflow: deploy.yml}
    incidents: {source: github-issues, labels: [incident]}
    sprints: {source: jira, board: 31}
    ignore_paths: ["terraform/.terraform.lock.hcl"]
    targets: {deploy-frequency: 3, lead-time: 48h}
"""


@dataclass
class TeamProfile:
    name: str
    zone: str
    repos: list[str]
    people: list[str]
    prs_per_day: float  # per repository, on working days
    pickup_hours: float  # median wait for a first review
    review_hours: float  # median from first review to merge
    size_lines: float  # median PR size
    deploy_days: tuple[int, ...]  # weekdays with production deployments
    deploys_per_day: int
    deploy_env: str
    failure_rate: float
    incidents_per_month: float
    points: bool  # sprint items carry story points
    sprint_days: int
    completion: float
    people_unreviewed: float = 0.04
    extra: dict[str, float] = field(default_factory=dict)


PROFILES = [
    TeamProfile(
        "payments",
        "Europe/Berlin",
        ["acme/payments-api", "acme/payments-web"],
        ["anna", "bjorn", "chiara", "dmitri", "elif", "farid"],
        prs_per_day=2.2,
        pickup_hours=3.0,
        review_hours=5.0,
        size_lines=140,
        deploy_days=(0, 1, 2, 3, 4),
        deploys_per_day=1,
        deploy_env="production",
        failure_rate=0.06,
        incidents_per_month=2.0,
        points=True,
        sprint_days=14,
        completion=0.85,
    ),
    TeamProfile(
        "mobile",
        "America/New_York",
        ["acme/mobile-app"],
        ["grace", "hiro", "isabel", "jamal", "kate"],
        prs_per_day=2.6,
        pickup_hours=9.0,
        review_hours=14.0,
        size_lines=320,
        deploy_days=(3,),
        deploys_per_day=1,
        deploy_env="app-store",
        failure_rate=0.12,
        incidents_per_month=1.2,
        points=False,
        sprint_days=14,
        completion=0.72,
        people_unreviewed=0.08,
    ),
    TeamProfile(
        "platform",
        "Asia/Tokyo",
        ["acme/platform-infra", "acme/platform-tools"],
        ["kenji", "lena", "mateo", "noor"],
        prs_per_day=1.3,
        pickup_hours=5.0,
        review_hours=6.0,
        size_lines=90,
        deploy_days=(0, 2, 4),
        deploys_per_day=1,
        deploy_env="production",
        failure_rate=0.08,
        incidents_per_month=1.5,
        points=True,
        sprint_days=14,
        completion=0.9,
    ),
]

BOTS = ["dependabot[bot]", "renovate[bot]"]
REVIEW_BOTS = ["coderabbitai[bot]", "github-actions[bot]"]
TOPICS = [
    "Add retry to webhook delivery",
    "Fix rounding in invoice totals",
    "Refactor session cache",
    "Update onboarding copy",
    "Speed up search index build",
    "Handle empty cart on checkout",
    "Add metrics for queue depth",
    "Remove legacy feature flag",
    "Paginate audit log API",
    "Fix flaky login test",
    "Add dark mode toggle",
    "Validate IBAN on input",
    "Migrate config to YAML",
    "Bump timeout for batch export",
    "Add idempotency keys to payouts",
    "Fix crash on rotate",
    "Cache exchange rates",
    "Split monolith job runner",
    "Improve error messages on 422",
    "Add canary for deploys",
]
FILES = [
    "src/{m}/service.py",
    "src/{m}/models.py",
    "src/{m}/api.py",
    "tests/test_{m}.py",
    "web/src/{m}.tsx",
    "docs/{m}.md",
]


ReviewPlan = tuple[str, str, datetime, bool]  # (reviewer, STATE, submitted, dismissed)


def _sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


def _lognormal(rng: random.Random, median: float, sigma: float = 0.9) -> float:
    return median * math.exp(rng.gauss(0, sigma))


def _utc(local: datetime) -> datetime:
    return local.astimezone(UTC).replace(tzinfo=None, microsecond=0)


def write_config(path: Path) -> bool:
    """Write the demo kpibot.yml unless one exists; True when written."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DEMO_CONFIG, encoding="utf-8")
    return True


def missing_teams(config: Config) -> list[str]:
    """The demo teams whose data ``config`` cannot show: not configured, or configured
    without the demo repositories."""
    out = []
    for p in PROFILES:
        team = next((t for t in config.teams if t.name.lower() == p.name), None)
        if team is None or not {r.lower() for r in p.repos} <= {r.lower() for r in team.repos}:
            out.append(p.name)
    return out


def config_path_for_demo(start: Path = Path("kpibot-demo.yml")) -> Path:
    """A path ``kpibot demo --config`` can use: ``kpibot-demo.yml`` unless it holds another
    configuration, else ``kpibot-demo-2.yml``, ..."""
    n = 1
    path = start
    while path.is_file():
        config, _ = parse_config(path.read_text(encoding="utf-8"), str(path))
        if config is not None and not missing_teams(config):
            return path
        n += 1
        path = start.with_name(f"{start.stem}-{n}{start.suffix}")
    return path


def demo_config() -> Config:
    config, problems = parse_config(DEMO_CONFIG, "kpibot.yml (demo)")
    assert config is not None, problems
    return config


def clear(session: Session) -> None:
    """Remove earlier demo data so that loading it again gives the same store."""
    names = [r for p in PROFILES for r in p.repos]
    repo_ids = list(session.scalars(select(Repository.id).where(Repository.full_name.in_(names))))
    team_ids = list(
        session.scalars(select(Team.id).where(Team.name.in_([p.name for p in PROFILES])))
    )
    if repo_ids:
        pr_ids = select(PullRequest.id).where(PullRequest.repository_id.in_(repo_ids))
        session.execute(delete(Review).where(Review.pull_request_id.in_(pr_ids)))
        session.execute(delete(PullRequestFile).where(PullRequestFile.pull_request_id.in_(pr_ids)))
        from bot.store.models import DeploymentPullRequest

        dep_ids = select(Deployment.id).where(Deployment.repository_id.in_(repo_ids))
        session.execute(
            delete(DeploymentPullRequest).where(DeploymentPullRequest.deployment_id.in_(dep_ids))
        )
    if team_ids:
        session.execute(
            delete(Incident).where(Incident.team_id.in_(team_ids), Incident.source == "demo")
        )
        sprint_ids = select(Sprint.id).where(Sprint.team_id.in_(team_ids), Sprint.source == "demo")
        session.execute(delete(SprintItem).where(SprintItem.sprint_id.in_(sprint_ids)))
        session.execute(delete(Sprint).where(Sprint.team_id.in_(team_ids), Sprint.source == "demo"))
        session.execute(
            delete(ActionItem).where(
                ActionItem.team_id.in_(team_ids), ActionItem.created_by == "UDEMO0000"
            )
        )
    if repo_ids:
        session.execute(delete(Deployment).where(Deployment.repository_id.in_(repo_ids)))
        session.execute(delete(PullRequest).where(PullRequest.repository_id.in_(repo_ids)))
        session.execute(delete(Commit).where(Commit.repository_id.in_(repo_ids)))
    session.flush()


@dataclass
class DemoSummary:
    teams: int
    pull_requests: int
    deployments: int
    incidents: int
    sprints: int
    action_items: int


def load(
    session: Session,
    config: Config,
    as_of: date,
    progress: Callable[[str], None] = lambda _m: None,
) -> DemoSummary:
    """Load the demo organisation for the six months up to ``as_of`` (UTC date)."""
    clear(session)
    team_ids = sync_teams(session, demo_config())
    # the user's kpibot.yml may rename or add teams; keep it in the store too
    if config.teams != demo_config().teams:
        team_ids.update(sync_teams(session, config))
    session.flush()
    end = datetime.combine(as_of, time(), tzinfo=UTC)
    start = end - timedelta(days=DAYS)
    totals = DemoSummary(len(PROFILES), 0, 0, 0, 0, 0)
    for profile in PROFILES:
        rng = random.Random(f"{SEED}-{profile.name}")
        zone = ZoneInfo(profile.zone)
        all_deps: list[Deployment] = []
        for repo_name in profile.repos:
            repo = session.scalar(select(Repository).where(Repository.full_name == repo_name))
            assert repo is not None
            merged = _pull_requests(session, rng, profile, repo, zone, start, end)
            totals.pull_requests += len(merged)
            deps = _deployments(session, rng, profile, repo, zone, start, end, merged)
            totals.deployments += len(deps)
            all_deps.extend(deps)
            progress(f"  {repo_name}: {len(merged)} merged PRs, {len(deps)} deployments")
        team_id = team_ids[profile.name]
        totals.incidents += _incidents(session, rng, profile, team_id, all_deps, start, end)
        totals.sprints += _sprints(session, rng, profile, team_id, zone, start, end)
        totals.action_items += _action_items(session, profile, team_id, as_of)
        session.flush()
    derive_all(session, production_envs_by_repo(session, demo_config()), full=True)
    # the demo's data is as of its end: every source of every team had its last sync then
    teams = {t.name: t for t in (*demo_config().teams, *config.teams)}
    every = {k for t in teams.values() for k in team_sources(t)}
    for key in sorted(k for k in every if k.source != "github-webhooks"):
        source_health.record_success(
            session, key.source, source_health.scope_of(key.source, key.scope), end
        )
    # teams of the user's kpibot.yml defined by people or paths select among the PRs loaded
    population.refresh(session, [t for t in config.teams if t.selects_prs])
    session.flush()
    return totals


def _working_time(rng: random.Random, day: date, zone: ZoneInfo) -> datetime:
    hour = rng.uniform(9, 18)
    local = datetime.combine(day, time(), tzinfo=zone) + timedelta(hours=hour)
    return local


def _add_working_hours(t: datetime, hours: float, zone: ZoneInfo) -> datetime:
    """Advance ``t`` (aware) by ``hours`` of elapsed time, skipping nights and weekends."""
    local = t.astimezone(zone)
    remaining = hours
    while remaining > 0:
        day_end = local.replace(hour=18, minute=0, second=0, microsecond=0)
        if local.weekday() >= 5 or local >= day_end:
            nxt = (local + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
            local = nxt
            continue
        if local.hour < 9:
            local = local.replace(hour=9, minute=0, second=0, microsecond=0)
        step = min(remaining, (day_end - local).total_seconds() / 3600)
        local += timedelta(hours=step)
        remaining -= step
    return local


def _pull_requests(
    session: Session,
    rng: random.Random,
    p: TeamProfile,
    repo: Repository,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
) -> list[PullRequest]:
    prs: list[PullRequest] = []
    plans: dict[int, list[ReviewPlan]] = {}
    number = 100
    day = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    module = repo.full_name.split("/")[1].split("-")[-1]
    while day < last:
        if day.weekday() < 5:
            count = _poisson(rng, p.prs_per_day)
            for _ in range(count):
                number += 1
                pr, plan = _one_pr(rng, p, repo, zone, day, number, module, end)
                prs.append(pr)
                plans[number] = plan
        day += timedelta(days=1)
    # bot PRs: weekly dependency bumps
    d = start.astimezone(zone).date()
    while d < last:
        number += 1
        created = _working_time(rng, d, zone)
        bot_merged = created + timedelta(hours=rng.uniform(1, 30))
        bot = BOTS[number % 2]
        pr = PullRequest(
            repository_id=repo.id,
            number=number,
            title=f"Bump lib-{number % 7} from 1.{number % 9}.0 to 1.{number % 9 + 1}.0",
            url=f"https://github.com/{repo.full_name}/pull/{number}",
            author_login=bot,
            author_is_bot=True,
            state="merged" if _utc(bot_merged) < end.replace(tzinfo=None) else "open",
            created_at=_utc(created),
            first_commit_at=_utc(created),
            merged_at=_utc(bot_merged) if _utc(bot_merged) < end.replace(tzinfo=None) else None,
            base_branch="main",
            additions=rng.randint(2, 40),
            deletions=rng.randint(2, 40),
        )
        prs.append(pr)
        d += timedelta(days=7)
    session.add_all(prs)
    session.flush()
    _files_and_reviews(session, rng, prs, plans, module)
    merged = sorted((x for x in prs if x.merged_at is not None), key=lambda x: (x.merged_at, x.id))
    # the default branch's history: one merge commit per merged PR, in merge order
    parent = _sha(repo.full_name, "root")
    commits = [
        Commit(
            repository_id=repo.id,
            sha=parent,
            parents="",
            authored_at=start.replace(tzinfo=None) - timedelta(days=30),
            committed_at=start.replace(tzinfo=None) - timedelta(days=30),
        )
    ]
    for pr in merged:
        sha = _sha(repo.full_name, pr.number, "merge")
        pr.merge_commit_sha = sha
        commits.append(
            Commit(
                repository_id=repo.id,
                sha=sha,
                parents=parent,
                authored_at=pr.merged_at,
                committed_at=pr.merged_at,
            )
        )
        parent = sha
    session.add_all(commits)
    session.flush()
    return merged


def _poisson(rng: random.Random, lam: float) -> int:
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


def _one_pr(
    rng: random.Random,
    p: TeamProfile,
    repo: Repository,
    zone: ZoneInfo,
    day: date,
    number: int,
    module: str,
    end: datetime,
) -> tuple[PullRequest, list[ReviewPlan]]:
    author = rng.choice(p.people)
    created = _working_time(rng, day, zone)
    first_commit = created - timedelta(hours=_lognormal(rng, 6, 1.0))
    if rng.random() < 0.05:
        first_commit = created + timedelta(minutes=20)  # pushed after opening the PR
    drafted = rng.random() < 0.22
    ready = _add_working_hours(created, _lognormal(rng, 5), zone) if drafted else created
    unreviewed = rng.random() < p.people_unreviewed
    first_review = _add_working_hours(ready, _lognormal(rng, p.pickup_hours), zone)
    merged = _add_working_hours(first_review, _lognormal(rng, p.review_hours), zone)
    end_naive = end.replace(tzinfo=None)
    still_open = _utc(merged) >= end_naive
    abandoned = rng.random() < 0.04
    state = "open" if still_open else ("closed" if abandoned else "merged")
    size = max(1, int(_lognormal(rng, p.size_lines, 1.0)))
    pr = PullRequest(
        repository_id=repo.id,
        number=number,
        title=f"{rng.choice(TOPICS)} ({module}-{number})",
        url=f"https://github.com/{repo.full_name}/pull/{number}",
        author_login=author,
        author_is_bot=False,
        state=state,
        is_draft=drafted and _utc(ready) >= end_naive,
        was_draft=drafted,
        created_at=_utc(created),
        ready_at=_utc(ready) if drafted and _utc(ready) < end_naive else None,
        first_commit_at=_utc(first_commit),
        merged_at=_utc(merged) if state == "merged" else None,
        closed_at=_utc(merged) if state != "open" else None,
        updated_at=min(_utc(merged), end_naive),
        base_branch="main" if rng.random() > 0.03 else "release/1.x",
        head_branch=f"{author}/{module}-{number}",
        additions=int(size * 0.7),
        deletions=size - int(size * 0.7),
    )
    # reviews, stored on the instance until the PR has an id
    plan: list[ReviewPlan] = []
    others = [x for x in p.people if x != author]
    if rng.random() < 0.3:  # a bot comments first; it never counts as a review
        plan.append((rng.choice(REVIEW_BOTS), "COMMENTED", ready + timedelta(minutes=4), False))
    if drafted and rng.random() < 0.15:  # early feedback on the draft
        plan.append((rng.choice(others), "COMMENTED", created + timedelta(hours=1), False))
    if not unreviewed:
        reviewer = rng.choice(others)
        if rng.random() < 0.25:
            plan.append((reviewer, "CHANGES_REQUESTED", first_review, False))
            second = first_review + (merged - first_review) * 0.6
            plan.append((reviewer, "APPROVED", second, False))
        elif rng.random() < 0.06:  # approval dismissed by a later push, approved again
            plan.append((reviewer, "APPROVED", first_review, True))
            plan.append(
                (
                    rng.choice(others),
                    "APPROVED",
                    first_review + (merged - first_review) * 0.7,
                    False,
                )
            )
        elif rng.random() < 0.03:  # approval dismissed, merged anyway
            plan.append((reviewer, "APPROVED", first_review, True))
        else:
            plan.append((reviewer, "APPROVED", first_review, False))
    if rng.random() < 0.1:
        plan.append((author, "COMMENTED", first_review - timedelta(minutes=10), False))
    return pr, [r for r in plan if _utc(r[2]) < end_naive]


def _files_and_reviews(
    session: Session,
    rng: random.Random,
    prs: list[PullRequest],
    plans: dict[int, list[ReviewPlan]],
    module: str,
) -> None:
    files: list[PullRequestFile] = []
    reviews: list[Review] = []
    for pr in prs:
        size = pr.additions + pr.deletions
        paths = rng.sample(FILES, k=min(len(FILES), 1 + size // 150))
        share = [rng.random() + 0.1 for _ in paths]
        total = sum(share)
        for path, s in zip(paths, share, strict=True):
            lines = max(1, round(size * s / total))
            a = round(lines * 0.7)
            files.append(
                PullRequestFile(
                    pull_request_id=pr.id,
                    path=path.format(m=module),
                    additions=a,
                    deletions=lines - a,
                )
            )
        if rng.random() < 0.07:  # a lock file change: large, and ignored for PR size
            lock = rng.randint(300, 3000)
            files.append(
                PullRequestFile(
                    pull_request_id=pr.id,
                    path="package-lock.json",
                    additions=lock,
                    deletions=lock // 2,
                )
            )
            pr.additions += lock
            pr.deletions += lock // 2
        for i, (who, state, at, dismissed) in enumerate(plans.get(pr.number, [])):
            reviews.append(
                Review(
                    pull_request_id=pr.id,
                    provider_id=f"{pr.repository_id}-{pr.number}-{i}",
                    author_login=who,
                    author_is_bot=who.endswith("[bot]"),
                    state=state,
                    submitted_at=_utc(at),
                    dismissed=dismissed,
                    dismissed_at=_utc(at) + timedelta(hours=2) if dismissed else None,
                )
            )
    session.add_all(files)
    session.add_all(reviews)
    session.flush()


def _deployments(
    session: Session,
    rng: random.Random,
    p: TeamProfile,
    repo: Repository,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
    merged: list[PullRequest],
) -> list[Deployment]:
    deps: list[Deployment] = []
    end_naive = end.replace(tzinfo=None)
    day = start.astimezone(zone).date() + timedelta(days=1)
    last = end.astimezone(zone).date()
    head_i = 0
    deployed: list[str] = []
    seq = 0
    main_prs = [m for m in merged if m.base_branch == "main"]
    while day < last:
        if day.weekday() in p.deploy_days:
            for _ in range(p.deploys_per_day):
                local = datetime.combine(day, time(), tzinfo=zone) + timedelta(
                    hours=rng.uniform(13, 17)
                )
                finish = _utc(local)
                if finish >= end_naive:
                    break
                while head_i < len(main_prs) and main_prs[head_i].merged_at <= finish:  # type: ignore[operator]
                    head_i += 1
                if head_i == 0:
                    continue
                sha = main_prs[head_i - 1].merge_commit_sha or ""
                seq += 1
                failed = rng.random() < p.failure_rate
                if failed:  # a failed run, then a successful retry an hour later
                    deps.append(_dep(repo, p, seq, sha, "failure", finish))
                    seq += 1
                    finish = finish + timedelta(hours=1)
                deps.append(_dep(repo, p, seq, sha, "success", finish))
                deployed.append(sha)
                if rng.random() < 0.03 and len(deployed) >= 2 and deployed[-2] != sha:
                    # rolled back to the previous release within hours
                    seq += 1
                    back = finish + timedelta(hours=rng.uniform(1, 5))
                    if back < end_naive:
                        deps.append(_dep(repo, p, seq, deployed[-2], "success", back))
                        deployed.append(deployed[-2])
                if rng.random() < 0.5:  # staging deployments do not count
                    seq += 1
                    deps.append(
                        _dep(
                            repo, p, seq, sha, "success", finish - timedelta(hours=2), env="staging"
                        )
                    )
        day += timedelta(days=1)
    session.add_all(deps)
    session.flush()
    # a few reverts of PRs shortly after they shipped
    prod = [d for d in deps if d.environment == p.deploy_env and d.status == "success"]
    for d in prod[5::23]:
        shipped = [m for m in main_prs if m.merge_commit_sha == d.commit_sha]
        if not shipped or shipped[0].merged_at is None:
            continue
        target = shipped[0]
        if d.finished_at is None:
            continue
        when = d.finished_at + timedelta(hours=rng.uniform(2, 20))
        if when >= end_naive:
            continue
        number = 9000 + len(deps) + d.id
        session.add(
            PullRequest(
                repository_id=repo.id,
                number=number,
                title=f'Revert "{target.title}"',
                url=f"https://github.com/{repo.full_name}/pull/{number}",
                author_login=target.author_login,
                state="merged",
                created_at=when - timedelta(minutes=30),
                first_commit_at=when - timedelta(minutes=35),
                merged_at=when,
                base_branch="main",
                additions=target.deletions,
                deletions=target.additions,
            )
        )
    session.flush()
    return [d for d in deps if d.environment == p.deploy_env]


def _dep(
    repo: Repository,
    p: TeamProfile,
    seq: int,
    sha: str,
    status: str,
    finished: datetime,
    env: str | None = None,
) -> Deployment:
    return Deployment(
        repository_id=repo.id,
        source="demo",
        provider_id=f"{repo.full_name}#{seq}",
        environment=env or p.deploy_env,
        commit_sha=sha,
        status=status,
        started_at=finished - timedelta(minutes=12),
        finished_at=finished,
        url=f"https://github.com/{repo.full_name}/deployments/{seq}",
    )


def _incidents(
    session: Session,
    rng: random.Random,
    p: TeamProfile,
    team_id: int,
    deps: list[Deployment],
    start: datetime,
    end: datetime,
) -> int:
    ok = sorted((d for d in deps if d.status == "success"), key=lambda d: d.finished_at or end)
    count = int(p.incidents_per_month * DAYS / 30.4)
    end_naive = end.replace(tzinfo=None)
    made = 0
    for i in range(count):
        d = ok[rng.randrange(len(ok))] if ok else None
        kind = i % 4
        if d is None or d.finished_at is None:
            continue
        if kind == 3:  # unrelated to any deployment: outside the attribution window
            started = d.finished_at + timedelta(days=rng.uniform(4, 6))
        else:
            started = d.finished_at + timedelta(hours=rng.uniform(0.5, 30))
        if started >= end_naive:
            continue
        restore = timedelta(minutes=_lognormal(rng, 50 if p.name != "mobile" else 240, 1.1))
        resolved = started + restore
        session.add(
            Incident(
                team_id=team_id,
                source="demo",
                provider_id=f"{p.name}-INC-{i + 1}",
                title=f"INC-{i + 1}: elevated error rate",
                url=f"https://github.com/acme/incidents/issues/{i + 1}",
                started_at=started,
                resolved_at=resolved if resolved < end_naive else None,
                deployment_id=d.id if kind == 0 else None,
                commit_sha=d.commit_sha if kind == 1 else None,
            )
        )
        made += 1
    session.flush()
    return made


def _sprints(
    session: Session,
    rng: random.Random,
    p: TeamProfile,
    team_id: int,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
) -> int:
    d = start.astimezone(zone).date()
    d += timedelta(days=(7 - d.weekday()) % 7)  # first Monday
    made = 0
    while True:
        s_local = datetime.combine(d, time(10), tzinfo=zone)
        e_local = datetime.combine(d + timedelta(days=p.sprint_days - 3), time(16), tzinfo=zone)
        if _utc(e_local) >= end.replace(tzinfo=None):
            break
        made += 1
        sprint = Sprint(
            team_id=team_id,
            source="demo",
            provider_id=f"{p.name}-{made}",
            name=f"{p.name.title()} sprint {made}",
            started_at=_utc(s_local),
            ended_at=_utc(e_local),
            state="closed",
        )
        session.add(sprint)
        session.flush()
        committed = rng.randint(10, 18)
        added = rng.randint(0, 4)
        for k in range(committed + added):
            is_committed = k < committed
            session.add(
                SprintItem(
                    sprint_id=sprint.id,
                    key=f"{p.name[:3].upper()}-{made * 100 + k}",
                    title=rng.choice(TOPICS),
                    committed=is_committed,
                    added=not is_committed,
                    removed=is_committed and rng.random() < 0.05,
                    completed=rng.random() < (p.completion if is_committed else 0.6),
                    points=float(rng.choice([1, 2, 3, 5, 8])) if p.points else None,
                )
            )
        d += timedelta(days=p.sprint_days)
    session.flush()
    return made


def _action_items(session: Session, p: TeamProfile, team_id: int, as_of: date) -> int:
    created = datetime.combine(as_of - timedelta(days=60), time(9))
    items = [
        ActionItem(
            team_id=team_id,
            opportunity="PRs wait too long for a first review",
            resolution="Review rotation: one reviewer on duty each day",
            owner="UDEMO0001",
            due_on=as_of + timedelta(days=10),
            kpi="first-review",
            baseline_value=9.5 * 3600,
            baseline_n=40,
            created_by="UDEMO0000",
            created_at=created,
        ),
        ActionItem(
            team_id=team_id,
            opportunity="Large PRs are hard to review",
            resolution="Split work behind feature flags; PR template asks for size",
            owner="UDEMO0002",
            due_on=as_of - timedelta(days=5),
            kpi="pr-size",
            baseline_value=310.0,
            baseline_n=52,
            created_by="UDEMO0000",
            created_at=created,
        ),
        ActionItem(
            team_id=team_id,
            opportunity="Incidents take long to diagnose",
            resolution="Runbooks for the top five alerts",
            owner="UDEMO0003",
            due_on=as_of - timedelta(days=20),
            completed_on=_first_of_previous_month(as_of) + timedelta(days=12),
            kpi="mttr",
            baseline_value=3 * 3600.0,
            baseline_n=4,
            created_by="UDEMO0000",
            created_at=created,
        ),
    ]
    session.add_all(items)
    return len(items)


def _first_of_previous_month(d: date) -> date:
    first = d.replace(day=1)
    prev_last = first - timedelta(days=1)
    return prev_last.replace(day=1)


def count_rows(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(PullRequest)) or 0
