"""Benchmark ``kpibot sync`` against the fake GitHub on loopback.

A fake organisation of 20 repositories and 10,000 pull requests (with reviews, files, commits,
a default-branch history, production deployments, 3 release branches per repository whose
deployed commits only their own history reaches, and incident issues) is served by
``tests/fakes/github.py`` in a separate process (so its data does not count towards this
process's memory); each team of five repositories has a ``github_team`` whose members the
sync reads. The command syncs it into a fresh SQLite database and prints the requests
made per 1,000 pull requests (and how many of them read deployed commits' history), the wall
time and the peak memory; then it updates 1 % of the
pull requests on the fake and prints the requests of the incremental sync that follows.

Targets: full sync <= 30 requests per 1,000 PRs; incremental sync <= 2 per repository + 1 per
50 changed PRs; peak memory < 300 MB. Exits 1 when a target fails. Needs GitHub's GraphQL
schema at ../shared/fixtures (the fake executes every query against it).

    python bench/bench_sync.py [--repos 20] [--pulls 10000] [--release-branches 3]
                               [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import benchdb  # noqa: E402

from bot.settings import Settings, parse_config  # noqa: E402
from bot.sources.github_client import GitHubClient  # noqa: E402
from bot.sources.sync import sync_all  # noqa: E402
from bot.store.migrate import upgrade  # noqa: E402
from bot.store.models import Deployment  # noqa: E402
from bot.store.session import make_engine, session_factory  # noqa: E402


class CountingClient(GitHubClient):
    """Counts the requests that read deployed commits' history (release branches)."""

    history_requests = 0

    def graphql(self, query: str, variables: Any = None, *, repo: str | None = None) -> Any:
        if "query CommitHistories" in query:
            self.history_requests += 1
        return super().graphql(query, variables, repo=repo)


def contents_figures(sessions: Any) -> tuple[int, int]:
    """(successful production deployments with unknown contents, rolled back ones)."""
    with sessions() as s:
        ok = (Deployment.status == "success", Deployment.environment == "production")
        unknown = s.scalar(
            select(func.count()).select_from(Deployment).where(*ok, Deployment.contents_unknown)
        )
        rolled = s.scalar(
            select(func.count())
            .select_from(Deployment)
            .where(*ok, Deployment.rolled_back_at.is_not(None))
        )
    return int(unknown or 0), int(rolled or 0)


NOW = datetime(2026, 11, 20, 0, 0)
TOUCHED_AT = "2026-11-20T01:00:00Z"


def config_text(repos: int) -> str:
    teams = []
    per_team = 5
    for t in range(math.ceil(repos / per_team)):
        names = [
            f"acme/service-{i:02d}" for i in range(t * per_team, min(repos, (t + 1) * per_team))
        ]
        teams.append(
            f"  - name: team-{t}\n"
            f"    repos: [{', '.join(names)}]\n"
            f"    github_team: acme/team-{t}\n"  # its members, read at every sync
            "    deployments: {source: github-deployments}\n"
            "    incidents: {source: github-issues, labels: [incident]}\n"
        )
    return "teams:\n" + "".join(teams)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repos", type=int, default=20)
    ap.add_argument("--pulls", type=int, default=10_000)
    ap.add_argument("--release-branches", type=int, default=3, help="per repository")
    ap.add_argument(
        "--database-url",
        help="default: a fresh SQLite file in a temporary folder; PostgreSQL: the run works in "
        "a schema of its own and drops it",
    )
    args = ap.parse_args()

    print(f"starting the fake GitHub with {args.repos} repositories, {args.pulls} pull requests...")
    fake = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.github",
            "--repos",
            str(args.repos),
            "--pulls",
            str(args.pulls),
            "--release-branches",
            str(args.release_branches),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        url = fake.stdout.readline().strip()
        if not url.startswith("http"):
            print("the fake GitHub did not start (is ../shared/fixtures there?)")
            return 1
        with (
            tempfile.TemporaryDirectory() as tmp,
            benchdb.scratch(args.database_url, Path(tmp) / "bench-sync.db") as store,
        ):
            db_url = store.url
            engine = make_engine(db_url)
            upgrade(engine)
            sessions = session_factory(engine)
            config, problems = parse_config(config_text(args.repos))
            assert config is not None, problems
            settings = Settings(database_url=db_url, github_token="bench", github_api_url=url)

            client = CountingClient("bench", url, timeout=120)
            started = time.monotonic()
            full = sync_all(settings, sessions, config=config, client=client, now=NOW, out=None)
            full_time = time.monotonic() - started
            full_requests = client.requests_made
            full_history = client.history_requests
            unknown, rolled = contents_figures(sessions)
            full_peak = peak_mb()
            pulls = sum(r.pulls for r in full.repos)
            per_1000 = full_requests / (pulls / 1000) if pulls else float("inf")

            touched = httpx.post(
                f"{url}/_fake/touch", json={"fraction": 0.01, "at": TOUCHED_AT}, timeout=60
            ).json()["touched"]
            before = client.requests_made
            started = time.monotonic()
            incr = sync_all(
                settings,
                sessions,
                config=config,
                client=client,
                now=datetime(2026, 11, 20, 2),
                out=None,
            )
            incr_time = time.monotonic() - started
            incr_requests = client.requests_made - before
            incr_history = client.history_requests - full_history
            client.close()
            engine.dispose()
    finally:
        if fake.stdin:
            fake.stdin.close()
        fake.wait(timeout=30)

    incr_budget = 2 * args.repos + math.ceil(touched / 50)
    rows = [
        ("full sync: pull requests stored", f"{pulls}", ""),
        ("full sync: requests", f"{full_requests}", ""),
        ("full sync: requests per 1,000 PRs", f"{per_1000:.1f}", "<= 30"),
        ("full sync: of which deployed commits' history", f"{full_history}", ""),
        ("deployments with unknown contents / rolled back", f"{unknown} / {rolled}", "0 / -"),
        ("full sync: wall time", f"{full_time:.1f} s", ""),
        ("peak memory (sync process)", f"{full_peak:.0f} MB", "< 300 MB"),
        (
            f"incremental sync ({touched} PRs changed): requests",
            f"{incr_requests}",
            f"<= {incr_budget}",
        ),
        ("incremental sync: of which deployed commits' history", f"{incr_history}", ""),
        ("incremental sync: wall time", f"{incr_time:.1f} s", ""),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>10}  {target}")
    failed = [
        name
        for name, ok in (
            ("requests per 1,000 PRs", per_1000 <= 30),
            ("incremental requests", incr_requests <= incr_budget),
            ("peak memory", peak_mb() < 300),
            ("deployments with unknown contents", unknown == 0),
            ("full sync errors", full.ok),
            ("incremental sync errors", incr.ok),
        )
        if not ok
    ]
    print(json.dumps({"failed": failed}) if failed else "all targets met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
