"""Benchmark: webhook deliveries against the HTTP-mode server on SQLite.

    python bench/bench_webhooks.py [--deliveries 10000] [--clients 8] [--replays 0.1]
                                   [--db PATH] [--database-url URL]

Serves the webhook routes on the HTTP-mode server (waitress, ``kpibot run``'s thread count)
over a fresh, migrated SQLite file, then 8 client processes, each with its own keep-alive
connection, post deliveries signed with their timestamp (``X-Kpibot-Timestamp``, signed in
``X-Kpibot-Signature-256``): deployments (three in four) and incidents linked to them, a share
of them delivered twice (``--replays``), in random order per client. Prints the throughput, the
latency percentiles, and checks that every event is stored exactly once and every redelivery
reported as a duplicate. Targets: >= 300 deliveries/s, p99 < 100 ms; the
exit status is 1 when one fails.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import benchdb  # noqa: E402
import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bot.settings import Config, Settings, TeamConfig  # noqa: E402
from bot.store.migrate import upgrade  # noqa: E402
from bot.store.models import Deployment, Incident  # noqa: E402
from bot.store.session import make_engine, session_factory  # noqa: E402
from bot.store.teams import sync_teams  # noqa: E402
from bot.surfaces.http import HttpApp, Server  # noqa: E402
from bot.surfaces.webhooks import Webhooks, install, sign_delivery  # noqa: E402

HTTP_THREADS = Settings().http_threads  # kpibot run's default (KPIBOT_HTTP_THREADS)
SECRET = "bench-secret"
TARGET_RATE = 300.0
TARGET_P99 = 0.100


def events(n: int, replays: float, rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """``n`` deliveries: unique events plus redeliveries of a ``replays`` share of them."""
    unique = int(n / (1 + replays))
    out: list[tuple[str, dict[str, Any]]] = []
    deployments: list[tuple[str, str]] = []
    for i in range(unique):
        repo = f"acme/svc-{i % 10}"
        day = 1 + (i // 400) % 28
        if i % 4 != 3 or not deployments:
            pid = f"dep-{i}"
            deployments.append((pid, repo))
            out.append(
                (
                    "/webhooks/deployments",
                    {
                        "id": pid,
                        "repository": repo,
                        "environment": "production",
                        "commit_sha": f"{i:040x}",
                        "status": rng.choice(["success"] * 9 + ["failure"]),
                        "started_at": f"2026-10-{day:02d}T10:00:00Z",
                        "finished_at": f"2026-10-{day:02d}T10:05:00Z",
                    },
                )
            )
        else:
            pid_dep, repo_dep = deployments[-1]
            out.append(
                (
                    "/webhooks/incidents",
                    {
                        "id": f"inc-{i}",
                        "repository": repo_dep,
                        "title": "Errors after deploy",
                        "started_at": f"2026-10-{day:02d}T11:00:00Z",
                        "resolved_at": f"2026-10-{day:02d}T11:40:00Z",
                        "deployment_id": pid_dep,
                    },
                )
            )
    out += [out[rng.randrange(unique)] for _ in range(n - unique)]
    return out


def _warm(_: int) -> None:
    """Import httpx in the worker before the clock starts."""


def _client(
    job: tuple[str, list[tuple[str, dict[str, Any]]]],
) -> tuple[list[float], dict[int, int], int]:
    """One client: its deliveries over one keep-alive connection, with their latencies."""
    base, share = job
    latencies: list[float] = []
    codes: dict[int, int] = {}
    dups = 0
    with httpx.Client(base_url=base, timeout=30) as http:
        for path, payload in share:
            body = json.dumps(payload).encode()
            ts = int(time.time())  # signed at sending time, as a sender does
            headers = {
                "Content-Type": "application/json",
                "X-Kpibot-Timestamp": str(ts),
                "X-Kpibot-Signature-256": sign_delivery(SECRET, body, ts),
            }
            t0 = time.perf_counter()
            r = http.post(path, content=body, headers=headers)
            latencies.append(time.perf_counter() - t0)
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
            if r.status_code == 200 and r.json().get("duplicate"):
                dups += 1
    return latencies, codes, dups


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deliveries", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--replays", type=float, default=0.1, help="share delivered twice")
    ap.add_argument("--db", type=Path, help="SQLite file, emptied first (default: a temporary one)")
    ap.add_argument(
        "--database-url",
        help="PostgreSQL instead of SQLite: the run works in a schema of its own and drops it",
    )
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        sqlite_path = args.db or Path(tmp) / "bench-webhooks.db"
        with benchdb.scratch(args.database_url, sqlite_path) as store:
            return run(args, store.url)


def run(args: argparse.Namespace, url: str) -> int:
    engine = make_engine(url)
    upgrade(engine)
    config = Config((TeamConfig(name="platform", repos=tuple(f"acme/svc-{i}" for i in range(10))),))
    sessions = session_factory(engine)
    with sessions() as s:
        sync_teams(s, config)
        s.commit()

    rng = random.Random(46)
    work = events(args.deliveries, args.replays, rng)
    shares: list[list[tuple[str, dict[str, Any]]]] = [[] for _ in range(args.clients)]
    for i, item in enumerate(work):
        shares[i % args.clients].append(item)
    app = HttpApp()
    install(app, Webhooks(sessions, config, SECRET))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    duplicates = 0

    with Server(app, host="127.0.0.1", port=0, threads=HTTP_THREADS) as server:
        base = server.url

        # every deployment an incident names is delivered before the incidents (the order a
        # CI/CD tool and an incident tool produce them in); clients are separate processes so
        # that they do not compete with the server for the interpreter
        deploy_shares = [[x for x in s if x[0].endswith("deployments")] for s in shares]
        incident_shares = [[x for x in s if x[0].endswith("incidents")] for s in shares]
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(args.clients) as pool:
            pool.map(_warm, range(args.clients))
            started = time.perf_counter()
            for phase in (deploy_shares, incident_shares):
                for mine, codes, dups in pool.map(_client, [(base, s) for s in phase]):
                    latencies.extend(mine)
                    for k, v in codes.items():
                        statuses[k] = statuses.get(k, 0) + v
                    duplicates += dups
            elapsed = time.perf_counter() - started

    with sessions() as s:
        n_dep = s.scalar(select(func.count()).select_from(Deployment)) or 0
        n_inc = s.scalar(select(func.count()).select_from(Incident)) or 0
        distinct_dep = s.scalar(select(func.count(func.distinct(Deployment.provider_id)))) or 0
    want_dep = len({b["id"] for p, b in work if p.endswith("deployments")})
    want_inc = len({b["id"] for p, b in work if p.endswith("incidents")})
    unique = want_dep + want_inc
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    rate = len(latencies) / elapsed
    ok_rate = rate >= TARGET_RATE
    ok_p99 = p99 < TARGET_P99
    ok_once = (
        n_dep == want_dep == distinct_dep
        and n_inc == want_inc
        and statuses == {200: len(work)}
        and duplicates == len(work) - unique
    )
    print(f"database: {engine.url.get_backend_name()}, server threads: {HTTP_THREADS}")
    print(f"deliveries: {len(work)} ({unique} events, {len(work) - unique} redeliveries) "
          f"from {args.clients} clients in {elapsed:.1f} s")  # fmt: skip
    print(f"throughput: {rate:.0f} deliveries/s (target >= {TARGET_RATE:.0f})"
          f"  {'PASS' if ok_rate else 'FAIL'}")  # fmt: skip
    print(f"latency: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
          f"(target p99 < {TARGET_P99 * 1000:.0f} ms)  {'PASS' if ok_p99 else 'FAIL'}")  # fmt: skip
    print(f"stored: {n_dep} deployments (want {want_dep}), {n_inc} incidents (want {want_inc}), "
          f"statuses {statuses}, duplicates reported {duplicates}  "
          f"{'PASS' if ok_once else 'FAIL'}")  # fmt: skip
    engine.dispose()
    return 0 if ok_rate and ok_p99 and ok_once else 1


if __name__ == "__main__":
    sys.exit(main())
