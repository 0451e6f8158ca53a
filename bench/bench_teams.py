"""Benchmark: concurrent Microsoft Teams commands against HTTP mode on the 200,000-PR database.

    python bench/bench_teams.py [--db PATH | --database-url URL [--schema S]] [--reuse]
                                [--concurrency 20] [--rounds 5] [--threads 64]
                                [--connections 500] [--workers N]

Builds (or reuses, with ``--reuse``) the synthetic organisation of ``bench_reports.py``, starts
HTTP mode with the Teams route as ``kpibot run --mode http`` serves it (waitress, the Teams
token check, the report worker processes) in a process of its own against the loopback fake
Bot Framework (OpenID metadata and keys, token endpoint, connector), and sends ``--rounds``
bursts of ``--concurrency`` simultaneous ``@kpibot`` messages (metric cards, DORA, health,
each for another team) to ``POST /api/messages``, each with its own signed Bot Framework token.

Every message must be acknowledged (HTTP 200 within 10 s) and answered with a card at the
fake connector within 60 s: its report, or the busy card when more reports are waiting than
the workers take. A message without either, or answered with an error, is a failure. Prints
the HTTP answer p50/p99 and the card's arrival at the connector p50/p95 (from sending the
message); exits 1 on any failure or missed target.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bench_reports  # noqa: E402
import bench_slack  # noqa: E402
import benchdb  # noqa: E402
import httpx  # noqa: E402
from bench_slack import ACK_TIMEOUT, ANSWER_TIMEOUT, percentile  # noqa: E402

from bot.chat.answers import BUSY, OOPS  # noqa: E402
from bot.chat.workers import ReportWorkers  # noqa: E402
from bot.settings import Config, Settings  # noqa: E402
from bot.store.session import make_engine, session_factory  # noqa: E402
from bot.surfaces.http import HttpApp, Server  # noqa: E402
from bot.teams.app import install  # noqa: E402
from tests.fakes.server import FakeRequest, FakeResponse  # noqa: E402
from tests.fakes.teams import APP_ID, APP_PASSWORD, FakeTeams  # noqa: E402

HTTP_P99_TARGET = 0.300
CARD_P95_TARGET = 1.5
COMMANDS = (*bench_slack.COMMANDS[:-1], "deploy-frequency")  # no digest preview in Teams yet


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return bench_slack.parse_args(argv, __doc__)


# ----------------------------------------------------------------------- the server process


def serve(
    database_url: str,
    openid_url: str,
    token_url: str,
    teams: int,
    threads: int,
    connections: int,
    workers: int,
    conn: Connection,
) -> None:
    """HTTP mode's Teams route as ``kpibot run --mode http`` serves it, until told to stop;
    then sends the report workers' figures back."""
    logging.basicConfig(level=logging.ERROR)
    settings = Settings(
        database_url=database_url,
        teams_app_id=APP_ID,
        teams_app_password=APP_PASSWORD,
        teams_openid_url=openid_url,
        teams_token_url=token_url,
    )
    config = Config(bench_reports.team_configs(teams))
    pool = ReportWorkers(database_url, config, workers)
    pool.warm_up()
    http_app = HttpApp()
    surface = install(
        http_app,
        settings,
        session_factory(make_engine(database_url)),
        config,
        clock=lambda: bench_reports.ANCHOR,
        workers=pool,
    )
    server = Server(
        http_app, host="127.0.0.1", port=0, threads=threads, connection_limit=connections
    )
    threading.Thread(target=server.serve_forever, name="serve", daemon=True).start()
    conn.send(server.port)
    conn.recv()
    conn.send(
        {
            "computed": sum(pool.computed_in.values()),
            "refused": pool.refused,
            "rebuilds": pool.rebuilds,
        }
    )
    surface.close()
    pool.close()


# ----------------------------------------------------------------- the fake and the clients


class TimedTeams(FakeTeams):
    """The fake Bot Framework, noting when each answer reaches the connector."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[str, tuple[float, str]] = {}  # replyToId -> (monotonic, card text)
        self._arrived_lock = threading.Lock()

    def post(self, req: FakeRequest) -> FakeResponse:
        at = time.monotonic()
        resp = super().post(req)
        if resp.status < 300:
            activity = req.json()
            text = json.dumps(activity.get("attachments") or [], ensure_ascii=False)
            with self._arrived_lock:
                self.arrived[str(activity.get("replyToId"))] = (at, text)
        return resp


@dataclass
class Sent:
    text: str
    activity: dict[str, object]
    token: str
    t0: float = 0.0
    ack: float | None = None
    card: float | None = None
    busy: bool = False
    problem: str | None = None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    store = bench_reports.ensure_database(args)
    try:
        return measure(args, store)
    finally:
        store.drop()


def measure(args: argparse.Namespace, store: benchdb.BenchStore) -> int:
    configs = bench_reports.team_configs(args.teams)
    load_before = os.getloadavg()
    with TimedTeams() as fake:
        proc, ours, port = bench_slack.start_server(
            serve,
            store.url,
            fake.openid_url,
            fake.token_url,
            args.teams,
            args.threads,
            args.connections,
            args.workers,
        )
        url = f"http://127.0.0.1:{port}/api/messages"

        def prepare(i: int) -> Sent:
            """A message as Teams sends it, with its own signed token."""
            team = configs[(i * 7) % len(configs)].name
            text = f"{COMMANDS[i % len(COMMANDS)]} {team}"
            activity = fake.activity(text, conversation=f"19:bench-{i % 7}@thread.tacv2")
            return Sent(text, activity, fake.token())

        client = httpx.Client(timeout=ACK_TIMEOUT, limits=httpx.Limits(max_connections=1000))
        pool = ThreadPoolExecutor(max_workers=args.concurrency)
        gate = threading.Barrier(args.concurrency)

        def send(sent: Sent, together: bool = True) -> None:
            body = json.dumps(sent.activity).encode()
            headers = {
                "Authorization": f"Bearer {sent.token}",
                "Content-Type": "application/json",
            }
            if together:
                gate.wait()  # the burst's messages leave at once
            sent.t0 = time.monotonic()
            try:
                r = client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                sent.problem = f"no HTTP answer ({type(exc).__name__})"
                return
            sent.ack = time.monotonic() - sent.t0
            if r.status_code != 200:
                sent.problem = f"HTTP {r.status_code}"

        def burst(batch: list[Sent], together: bool = True) -> None:
            list(pool.map(lambda s: send(s, together), batch))
            deadline = time.monotonic() + ANSWER_TIMEOUT
            waiting = [s for s in batch if s.problem is None]
            while waiting and time.monotonic() < deadline:
                time.sleep(0.01)
                with fake._arrived_lock:
                    arrived = dict(fake.arrived)
                still = []
                for s in waiting:
                    hit = arrived.get(str(s.activity["id"]))
                    if hit is None:
                        still.append(s)
                        continue
                    at, text = hit
                    s.card = at - s.t0
                    s.busy = BUSY in text
                    if OOPS in text:
                        s.problem = "answered with an error"
                waiting = still
            for s in waiting:
                s.problem = f"no card within {ANSWER_TIMEOUT:.0f} s"

        # warm-up: one message of each kind (imports, statement caches), not measured
        for k in range(len(COMMANDS)):
            burst([prepare(10_000_000 + k)], together=False)
        print(
            f"\n{args.rounds} bursts of {args.concurrency} concurrent Teams messages; HTTP "
            f"threads {args.threads}, connection limit {args.connections}, {args.workers} report "
            f"worker process(es); {store.label}"
        )
        sent: list[Sent] = []
        t_all = time.monotonic()
        for r in range(args.rounds):
            t_round = time.monotonic()
            batch = [prepare(i) for i in range(r * args.concurrency, (r + 1) * args.concurrency)]
            burst(batch)
            sent += batch
            print(
                f"  burst {r + 1}: {sum(s.card is not None and not s.busy for s in batch)} "
                f"reports, {sum(s.busy for s in batch)} busy, "
                f"{sum(s.problem is not None for s in batch)} failed, "
                f"done in {time.monotonic() - t_round:.2f} s"
            )
        total = time.monotonic() - t_all
        pool.shutdown()
        client.close()
        ours.send("stop")
        stats = ours.recv() if ours.poll(30) else {}
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    load_after = os.getloadavg()
    acks = [s.ack for s in sent if s.ack is not None]
    cards = [s.card for s in sent if s.card is not None and not s.busy]
    failures = [s for s in sent if s.problem is not None]
    busy = sum(s.busy for s in sent)
    http50, http99 = percentile(acks, 0.5), percentile(acks, 0.99)
    card50, card95 = percentile(cards, 0.5), percentile(cards, 0.95)
    ok_http = bool(acks) and http99 < HTTP_P99_TARGET
    ok_card = bool(cards) and card95 < CARD_P95_TARGET
    print(
        f"\n  messages: {len(sent)} in {total:.1f} s: {len(cards)} answered with their report, "
        f"{busy} with the busy card, failures (no 200, no card or an error card): "
        f"{len(failures)}"
    )
    print(
        f"  HTTP answer      p50 {http50 * 1000:7.1f} ms   p99 {http99 * 1000:7.1f} ms   "
        f"target p99 < {HTTP_P99_TARGET * 1000:.0f} ms  {'PASS' if ok_http else 'FAIL'}"
    )
    print(
        f"  card arrival     p50 {card50 * 1000:7.1f} ms   p95 {card95 * 1000:7.1f} ms   "
        f"target p95 < {CARD_P95_TARGET * 1000:.0f} ms {'PASS' if ok_card else 'FAIL'}"
    )
    if stats:
        print(
            f"  workers: {stats['computed']} reports computed (warm-up included), "
            f"{stats['refused']} refused busy, {stats['rebuilds']} pool rebuilds"
        )
    print(
        "  load average (1/5/15 min): before "
        + " ".join(f"{x:.2f}" for x in load_before)
        + ", after "
        + " ".join(f"{x:.2f}" for x in load_after)
    )
    print("  " + benchdb.speed_line())
    for s in failures[:10]:
        print(f"  failed: @kpibot {s.text}: {s.problem}")
    return 0 if ok_http and ok_card and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
