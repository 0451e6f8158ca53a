"""Benchmark: concurrent signed slash commands against HTTP mode on the 200,000-PR database.

    python bench/bench_slack.py [--db PATH | --database-url URL [--schema S]] [--reuse]
                                [--concurrency 20] [--rounds 5] [--threads 64]
                                [--connections 500] [--workers N]

Builds (or reuses, with ``--reuse``) the synthetic organisation of ``bench_reports.py``, starts
HTTP mode as ``kpibot run --mode http`` does (waitress, Bolt request verification, report
worker processes) in a process of its own against the loopback fake Slack Web API, and fires
``--rounds`` bursts of ``--concurrency`` simultaneous ``/kpi`` commands (metric cards, DORA,
health, digest previews for different teams and periods) from this process, one thread on
non-blocking sockets (so the client adds little to the measured latency).

Every command must be acknowledged (HTTP 200 within 10 s) and answered: by its report through
the response URL within 60 s, or, when more reports are waiting than the workers take, by the
busy answer in the ack itself. A command without either is a failure. Prints the ack latency
p50/p99, the time until the report reaches the response URL p50/p95, how many were answered
busy and how many failed; exits 1 on any failure or missed target.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bench_reports  # noqa: E402
import benchdb  # noqa: E402
from slack_sdk.signature import SignatureVerifier  # noqa: E402

from bot.settings import Config, Settings  # noqa: E402
from bot.slack.app import LISTENER_THREADS, create_app  # noqa: E402
from bot.slack.listeners.common import BUSY, OOPS  # noqa: E402
from bot.slack.workers import default_count  # noqa: E402
from bot.surfaces.http import Server, slack_http_app  # noqa: E402
from tests.fakes.slack import BOT_TOKEN, FakeSlack  # noqa: E402

SECRET = "bench-signing-secret"
ACK_P99_TARGET = 0.500
ANSWER_P95_TARGET = 3.0
ACK_TIMEOUT = 10.0  # Slack gives up after 3 s; past 10 s a command counts as not acknowledged
ANSWER_TIMEOUT = 60.0
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


def start_server(serve: Callable[..., None], *args: Any) -> tuple[BaseProcess, Connection, int]:
    """Start HTTP mode in a process of its own (``serve(*args, pipe)`` sends its port back on
    the pipe once listening, then answers ``"stop"`` on it); the process, our end of the
    pipe and the port."""
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=serve, args=(*args, theirs), name="kpibot-http")
    proc.start()
    if not ours.poll(120):
        proc.kill()
        raise SystemExit("the HTTP server did not start within 120 s")
    return proc, ours, int(ours.recv())


def percentile(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def parse_args(argv: Sequence[str] | None, doc: str | None = __doc__) -> argparse.Namespace:
    """The arguments of this benchmark (and of ``bench_teams.py``, which passes its ``doc``)."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    benchdb.add_arguments(ap, Path(tempfile.gettempdir()) / "kpibot-bench.db")
    ap.add_argument("--concurrency", type=int, default=20, help="commands per burst")
    ap.add_argument("--rounds", type=int, default=5, help="bursts")
    ap.add_argument(
        "--threads",
        type=int,
        default=Settings().http_threads,
        help="HTTP threads (KPIBOT_HTTP_THREADS, default %(default)s)",
    )
    ap.add_argument(
        "--connections",
        type=int,
        default=Settings().http_connections,
        help="HTTP connection limit (KPIBOT_HTTP_CONNECTIONS, default %(default)s)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=default_count(),
        help="report worker processes, as kpibot run uses (default: one per core, %(default)s)",
    )
    args = ap.parse_args(argv)
    if args.concurrency < 1 or args.rounds < 1:
        ap.error("--concurrency and --rounds must be at least 1")
    args.teams, args.prs, args.deployments, args.incidents = 50, 200_000, 20_000, 2_000
    return args


# ----------------------------------------------------------------------- the server process


def serve(
    database_url: str,
    api_url: str,
    teams: int,
    threads: int,
    connections: int,
    workers: int,
    conn: Connection,
) -> None:
    """HTTP mode as ``kpibot run --mode http`` starts it, until told to stop; then sends the
    report workers' figures back."""
    logging.basicConfig(level=logging.ERROR)
    settings = Settings(
        database_url=database_url,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=api_url,
    )
    app = create_app(
        settings,
        config=Config(bench_reports.team_configs(teams)),
        clock=lambda: bench_reports.ANCHOR,
        threads=LISTENER_THREADS,
        report_workers=workers,
    )
    server = Server(
        slack_http_app(app),
        host="127.0.0.1",
        port=0,
        threads=threads,
        connection_limit=connections,
    )
    threading.Thread(target=server.serve_forever, name="serve", daemon=True).start()
    conn.send(server.port)
    conn.recv()
    w = app.workers
    conn.send(
        {
            "computed": sum(w.computed_in.values()) if w else 0,
            "refused": w.refused if w else 0,
            "rebuilds": w.rebuilds if w else 0,
            "max_waiting": w.max_waiting if w else 0,
            "answer_budget": w.answer_budget if w else 0.0,
        }
    )
    app.close()


# ----------------------------------------------------------------------------- the clients


@dataclass
class Sent:
    text: str
    hook: str
    t0: float
    ack: float | None = None  # seconds, None: not acknowledged
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
    verifier = SignatureVerifier(SECRET)
    load_before = os.getloadavg()
    with FakeSlack() as slack:
        proc, ours, port = start_server(
            serve,
            store.url,
            slack.api_url,
            args.teams,
            args.threads,
            args.connections,
            args.workers,
        )
        url = f"http://127.0.0.1:{port}/slack/events"

        port = int(url.split(":")[2].split("/")[0])

        def prepare(i: int) -> tuple[Sent, bytes]:
            """A signed ``/kpi`` command as the raw HTTP request Slack would send."""
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
            ).encode()
            ts = str(int(time.time()))
            head = (
                f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"X-Slack-Request-Timestamp: {ts}\r\n"
                f"X-Slack-Signature: {verifier.generate_signature(timestamp=ts, body=body)}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            return Sent(text, hook, 0.0), head.encode() + body

        def burst(batch: list[tuple[Sent, bytes]]) -> list[Sent]:
            """Open a connection per command at once and send them all; record each ack.

            The client is one thread on non-blocking sockets, so that the measured latency is
            the server's, not 200 client threads waiting for this process's interpreter."""
            sel = selectors.DefaultSelector()
            state: dict[socket.socket, tuple[Sent, bytes, bytearray]] = {}
            for sent, raw in batch:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                sent.t0 = time.monotonic()
                sock.connect_ex(("127.0.0.1", port))
                state[sock] = (sent, raw, bytearray())
                sel.register(sock, selectors.EVENT_WRITE)
            deadline = time.monotonic() + ACK_TIMEOUT
            while state and time.monotonic() < deadline:
                for key, events in sel.select(timeout=0.5):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    sent, raw, buf = state[sock]
                    if events & selectors.EVENT_WRITE:
                        try:
                            sock.sendall(raw)
                        except OSError as exc:
                            sent.problem = f"no ack ({type(exc).__name__})"
                            sel.unregister(sock)
                            sock.close()
                            del state[sock]
                            continue
                        sel.modify(sock, selectors.EVENT_READ)
                        continue
                    try:
                        chunk = sock.recv(65536)
                    except OSError as exc:
                        chunk, sent.problem = b"", f"no ack ({type(exc).__name__})"
                    if chunk:
                        buf += chunk
                        continue
                    took = time.monotonic() - sent.t0
                    sel.unregister(sock)
                    sock.close()
                    del state[sock]
                    if sent.problem:
                        continue
                    head, _, payload = bytes(buf).partition(b"\r\n\r\n")
                    status = head.split(b" ", 2)[1:2]
                    if status != [b"200"]:
                        sent.problem = f"no ack (HTTP {status[0].decode() if status else '?'})"
                        continue
                    sent.ack = took
                    sent.busy = bool(payload) and json.loads(payload).get("text") == BUSY
            for sock, (sent, _raw, _buf) in state.items():
                sent.problem = f"no ack within {ACK_TIMEOUT:.0f} s"
                sock.close()
            sel.close()
            return [sent for sent, _ in batch]

        def answers(batch: list[Sent]) -> dict[str, float]:
            """Wait for the reports of ``batch`` at the response URLs; hook -> seconds."""
            want = {f"/response/{s.hook}": s for s in batch if s.ack is not None and not s.busy}
            got: dict[str, float] = {}
            deadline = time.monotonic() + ANSWER_TIMEOUT
            while len(got) < len(want) and time.monotonic() < deadline:
                for call in slack.calls_to("response_url"):
                    s = want.get(call.path)
                    if s is not None and s.hook not in got:
                        got[s.hook] = call.at - s.t0
                        if OOPS in call.text_of():
                            s.problem = "answered with an error"
                time.sleep(0.05)
            for s in want.values():
                if s.hook not in got:
                    s.problem = f"no answer within {ANSWER_TIMEOUT:.0f} s"
            return got

        # warm-up: one command of each kind (imports, statement caches), not measured
        for k in range(len(COMMANDS)):
            answers(burst([prepare(10_000_000 + k)]))
        print(
            f"\n{args.rounds} bursts of {args.concurrency} concurrent signed /kpi commands; "
            f"HTTP threads {args.threads}, connection limit {args.connections}, "
            f"{LISTENER_THREADS} listener threads, {args.workers} report worker process(es); "
            f"{store.label}"
        )
        sent: list[Sent] = []
        report_times: list[float] = []
        t_all = time.monotonic()
        for r in range(args.rounds):
            t_round = time.monotonic()
            ids = range(r * args.concurrency, (r + 1) * args.concurrency)
            batch = burst([prepare(i) for i in ids])
            got = answers(batch)
            sent += batch
            report_times += got.values()
            busy = sum(s.busy for s in batch)
            print(
                f"  burst {r + 1}: {len(got)} reports, {busy} busy, "
                f"{sum(s.problem is not None for s in batch)} failed, "
                f"done in {time.monotonic() - t_round:.2f} s"
            )
        total = time.monotonic() - t_all
        ours.send("stop")
        stats = ours.recv() if ours.poll(30) else {}
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    load_after = os.getloadavg()
    acks = [s.ack for s in sent if s.ack is not None]
    failures = [s for s in sent if s.problem is not None]
    busy = sum(s.busy for s in sent)
    ack50, ack99 = percentile(acks, 0.5), percentile(acks, 0.99)
    ans50, ans95 = percentile(report_times, 0.5), percentile(report_times, 0.95)
    ok_ack = bool(acks) and ack99 < ACK_P99_TARGET
    ok_answer = not report_times or ans95 < ANSWER_P95_TARGET
    print(
        f"\n  commands: {len(sent)} in {total:.1f} s: {len(report_times)} answered with their "
        f"report, {busy} answered busy in the ack, failures (no ack or no answer): "
        f"{len(failures)}"
    )
    print(
        f"  ack latency      p50 {ack50 * 1000:7.1f} ms   p99 {ack99 * 1000:7.1f} ms   "
        f"target p99 < {ACK_P99_TARGET * 1000:.0f} ms  {'PASS' if ok_ack else 'FAIL'}"
    )
    print(
        f"  report answer    p50 {ans50 * 1000:7.1f} ms   p95 {ans95 * 1000:7.1f} ms   "
        f"target p95 < {ANSWER_P95_TARGET * 1000:.0f} ms {'PASS' if ok_answer else 'FAIL'}"
    )
    if report_times:
        print(f"  mean report answer {statistics.fmean(report_times) * 1000:.0f} ms")
    if stats:
        print(
            f"  workers: {stats['computed']} reports computed (warm-up included), "
            f"{stats['refused']} refused busy (ready later than {stats['answer_budget']:.1f} s or "
            f"{stats['max_waiting']} waiting), "
            f"{stats['rebuilds']} pool rebuilds"
        )
    print(
        "  load average (1/5/15 min): before "
        + " ".join(f"{x:.2f}" for x in load_before)
        + ", after "
        + " ".join(f"{x:.2f}" for x in load_after)
    )
    print("  " + benchdb.speed_line())
    for s in failures[:10]:
        print(f"  failed: /kpi {s.text}: {s.problem}")
    return 0 if ok_ack and ok_answer and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
