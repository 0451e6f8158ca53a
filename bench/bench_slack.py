"""Benchmark: concurrent signed slash commands against HTTP mode on the 200,000-PR database.

    python bench/bench_slack.py [--db PATH | --database-url URL [--schema S]] [--reuse]
                                [--concurrency 20] [--rounds 5] [--threads 32]

Builds (or reuses, with ``--reuse``) the synthetic organisation of ``bench_reports.py``,
starts the real HTTP app (waitress, Bolt request verification) against the loopback fake
Slack Web API, and fires ``--rounds`` bursts of ``--concurrency`` simultaneous ``/kpi``
commands (metric cards, DORA, health, digest previews for different teams and periods).
Prints the ack latency (HTTP response to the signed request) p50/p99 and the time until the
``respond()`` answer reaches the response URL p50/p95, with their targets. A command with no
ack (refused, reset or timed out), an error status or no answer within 60 s is a failure:
they are counted and printed, and the exit status is 1 when there is one or a target fails.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bench_reports  # noqa: E402
import benchdb  # noqa: E402
import httpx  # noqa: E402
from slack_sdk.signature import SignatureVerifier  # noqa: E402

from bot.settings import Config, Settings  # noqa: E402
from bot.slack.app import create_app  # noqa: E402
from bot.slack.workers import default_count  # noqa: E402
from bot.surfaces.http import Server, slack_http_app  # noqa: E402
from tests.fakes.slack import BOT_TOKEN, FakeSlack  # noqa: E402

SECRET = "bench-signing-secret"
ACK_P99_TARGET = 0.500
ANSWER_P95_TARGET = 3.0
COMMANDS = (
    "cycle-time",
    "pr-size last-month",
    "first-review",
    "review-coverage 90d",
    "merge-frequency",
    "dora last-month",
    "health",
    "lead-time",
    "cfr last-month",
    "weekly",
)


def percentile(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    benchdb.add_arguments(ap, Path(tempfile.gettempdir()) / "kpibot-bench.db")
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=32, help="listener and HTTP threads")
    ap.add_argument(
        "--workers",
        type=int,
        default=default_count(),
        help="report worker processes, as kpibot run uses (default: one per core, %(default)s)",
    )
    args = ap.parse_args(argv)
    args.teams, args.prs, args.deployments, args.incidents = 50, 200_000, 20_000, 2_000
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    store = bench_reports.ensure_database(args)
    try:
        return measure(args, store)
    finally:
        store.drop()


def measure(args: argparse.Namespace, store: benchdb.BenchStore) -> int:
    configs = bench_reports.team_configs(args.teams)
    config = Config(configs)
    with FakeSlack() as slack:
        settings = Settings(
            database_url=store.url,
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SECRET,
            slack_api_url=slack.api_url,
        )
        app = create_app(
            settings,
            config=config,
            clock=lambda: bench_reports.ANCHOR,
            threads=args.threads,
            report_workers=args.workers,
        )
        server = Server(slack_http_app(app), host="127.0.0.1", port=0, threads=args.threads)
        server.start()
        url = server.url + "/slack/events"
        verifier = SignatureVerifier(SECRET)
        acks: list[float] = []
        answers: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()

        def one(i: int, client: httpx.Client) -> None:
            team = configs[(i * 7) % len(configs)].name
            text = f"{COMMANDS[i % len(COMMANDS)]} {team}"
            hook = f"bench{i}"
            body = urlencode(
                {
                    "command": "/kpi",
                    "text": text,
                    "user_id": f"U{i:06d}",
                    "channel_id": "C0BENCH",
                    "team_id": "T0FAKE001",
                    "response_url": slack.response_url(hook),
                    "trigger_id": f"t{i}",
                }
            )
            ts = str(int(time.time()))
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": verifier.generate_signature(timestamp=ts, body=body),
            }
            t0 = time.monotonic()
            try:
                r = client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:  # refused, reset or timed out: no ack
                with lock:
                    failures.append(f"{text}: no ack ({type(exc).__name__})")
                return
            t_ack = time.monotonic() - t0
            if r.status_code != 200:
                with lock:
                    failures.append(f"{text}: HTTP {r.status_code}")
                return
            deadline = time.monotonic() + 60
            path = f"/response/{hook}"
            while time.monotonic() < deadline:
                hits = [c for c in slack.calls_to("response_url") if c.path == path]
                if hits:
                    with lock:
                        acks.append(t_ack)
                        answers.append(hits[0].at - t0)
                    return
                time.sleep(0.005)
            with lock:
                failures.append(f"{text}: no answer within 60 s")

        # warm-up: one command of each kind (imports, statement caches), not measured
        with httpx.Client(timeout=60) as client:
            for k in range(len(COMMANDS)):
                one(10_000 + k, client)
        acks.clear()
        answers.clear()
        print(
            f"\n{args.rounds} bursts of {args.concurrency} concurrent signed /kpi commands, "
            f"{args.threads} listener threads, {args.workers} report worker process(es), "
            f"{store.label}"
        )
        clients = [httpx.Client(timeout=60) for _ in range(args.concurrency)]
        t_all = time.monotonic()
        for r in range(args.rounds):
            t_round = time.monotonic()
            with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
                futures = [
                    pool.submit(one, r * args.concurrency + j, clients[j])
                    for j in range(args.concurrency)
                ]
            for f in futures:  # an error the command's own checks did not expect
                if f.exception() is not None:
                    failures.append(f"burst {r + 1}: {f.exception()!r}")
            print(f"  burst {r + 1}: done in {time.monotonic() - t_round:.2f} s")
        total = time.monotonic() - t_all
        for c in clients:
            c.close()
        server.stop()
        app.close()
    ack50, ack99 = percentile(acks, 0.5), percentile(acks, 0.99)
    ans50, ans95 = percentile(answers, 0.5), percentile(answers, 0.95)
    ok_ack, ok_answer = ack99 < ACK_P99_TARGET, ans95 < ANSWER_P95_TARGET
    sent = args.rounds * args.concurrency
    print(
        f"\n  commands sent: {sent}, acked and answered: {len(answers)} in {total:.1f} s, "
        f"failures (no ack, an error status or no answer): {len(failures)}"
    )
    print(
        f"  ack latency      p50 {ack50 * 1000:7.1f} ms   p99 {ack99 * 1000:7.1f} ms   "
        f"target p99 < {ACK_P99_TARGET * 1000:.0f} ms  {'PASS' if ok_ack else 'FAIL'}"
    )
    print(
        f"  respond() answer p50 {ans50 * 1000:7.1f} ms   p95 {ans95 * 1000:7.1f} ms   "
        f"target p95 < {ANSWER_P95_TARGET * 1000:.0f} ms {'PASS' if ok_answer else 'FAIL'}"
    )
    print(f"  mean answer {statistics.fmean(answers) * 1000:.0f} ms" if answers else "")
    for f in failures[:10]:
        print("  failed:", f)
    return 0 if ok_ack and ok_answer and not failures and len(answers) == sent else 1


if __name__ == "__main__":
    sys.exit(main())
