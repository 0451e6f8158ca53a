"""The ``kpibot`` command line: report, digest, demo, db upgrade, config check.

Bad input (an unknown metric, team or period, a broken kpibot.yml) prints one line saying
what is wrong and what is valid, and exits with code 2.

Each command imports what it uses when it runs (``--help`` needs only the metric registry;
``report`` no Slack, Teams, scheduler, sources, HTTP or digest modules, and the chart module
only for ``--chart``): measure with ``python -X importtime -m bot report cycle-time``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from bot import __version__
from bot.errors import KpibotError, UnknownMetric
from bot.metrics import registry
from bot.runtime import tune_gc

if TYPE_CHECKING:
    from bot.chat.workers import ReportWorkers
    from bot.metrics.periods import Period
    from bot.settings import Config, Settings, TeamConfig

log = logging.getLogger("kpibot")

EXIT_USAGE = 2

SPECIAL_REPORTS = ("dora", "health")


class _Parser(argparse.ArgumentParser):
    """argparse that says what is wrong in one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"kpibot: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="kpibot",
        description="Engineering KPIs for teams: cycle time, review health, DORA, predictability.",
    )
    p.add_argument("--version", action="version", version=f"kpibot {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    metrics = ", ".join(m.id for m in registry.METRICS)
    r = sub.add_parser(
        "report",
        help="show one KPI (or 'dora', 'health') for a team",
        description=f"Show a metric card. METRIC is one of: {metrics}, dora, health "
        "(aliases accepted).",
    )
    r.add_argument("metric", metavar="METRIC")
    _common(r, "28d")
    r.add_argument("--format", choices=("text", "json"), default="text")
    r.add_argument(
        "--chart",
        metavar="FILE.png",
        help="also write the chart as a PNG: the KPI's last 8 periods, or for 'dora' the four "
        "keys over 6 periods with their bands",
    )
    r.add_argument(
        "--phases",
        action="store_true",
        help="with --chart, for cycle-time and lead-time: the chart of their phases",
    )
    r.add_argument(
        "--calendar",
        action="store_true",
        help="count calendar time even where the team has working_hours (business hours)",
    )

    d = sub.add_parser("digest", help="render the weekly or monthly digest")
    d.add_argument("kind", choices=("weekly", "monthly", "leading", "lagging"))
    _common(d, "the last complete week or month")
    d.add_argument("--format", choices=("text", "json", "blocks"), default="text")
    d.add_argument(
        "--chart",
        metavar="FILE.png",
        help="monthly: also write the DORA chart posted with the digest as a PNG",
    )
    d.add_argument(
        "--post",
        action="store_true",
        help="post it to the team's subscribed channels (once per channel and period)",
    )
    d.add_argument(
        "--channel", metavar="C…", help="with --post: this channel (subscribing it if needed)"
    )
    d.add_argument(
        "--calendar",
        action="store_true",
        help="count calendar time even where the team has working_hours (business hours)",
    )

    demo = sub.add_parser("demo", help="load a demo organisation (three teams, six months)")
    demo.add_argument(
        "--as-of", metavar="YYYY-MM-DD", help="last day of the demo history (default today)"
    )
    demo.add_argument(
        "--config",
        metavar="PATH",
        help="use (and write, when missing) the demo team configuration at PATH instead of "
        "$KPIBOT_CONFIG",
    )

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", parser_class=_Parser)
    db_sub.add_parser("upgrade", help="apply database migrations")

    run = sub.add_parser(
        "run",
        help="serve Slack and/or Microsoft Teams (Socket Mode when SLACK_APP_TOKEN is set, "
        "else HTTP)",
        description="Serve the chat platforms that are set up; either alone is enough. Slack: "
        "Socket Mode needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN (no public URL); HTTP mode "
        "needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET and serves POST /slack/events. "
        "Microsoft Teams (HTTP mode only) needs TEAMS_APP_ID and TEAMS_APP_PASSWORD and serves "
        "POST /api/messages. HTTP mode serves GET /healthz on PORT too.",
    )
    run.add_argument(
        "--mode",
        choices=RUN_MODES,
        help="socket (Slack only) or http (default: socket when SLACK_APP_TOKEN is set, else "
        "http); "
        "scheduler: only the scheduler (digests, reminders, sync), for a worker process",
    )
    run.add_argument("--port", type=_port, help="HTTP port, 1-65535 (default $PORT or 3000)")
    run.add_argument(
        "--host",
        default="0.0.0.0",
        help="address the HTTP server listens on (default 0.0.0.0: every interface)",
    )
    run.add_argument(
        "--no-scheduler", action="store_true", help="do not post digests and reminders"
    )

    sync = sub.add_parser(
        "sync",
        help="ingest pull requests, deployments and incidents from GitHub and the teams' "
        "other sources",
        description="Fill the store from GitHub (GITHUB_TOKEN, GITHUB_API_URL) for every team: "
        "incremental by default, resumable, with progress per repository.",
    )
    sync.add_argument("--team", "-t", help="only this team (default: every team)")
    sync.add_argument(
        "--full",
        action="store_true",
        help="re-read everything instead of only what changed since the last sync",
    )
    sync.add_argument(
        "--now",
        metavar="ISO-TIME",
        help="sync as of this moment (a first sync reads about 13 months back from it)",
    )

    st = sub.add_parser(
        "status",
        help="every data source of a team: data as of, last error, next run",
        description="List the sources a team's KPIs are read from (GitHub repositories, "
        "webhooks, Jira, PagerDuty, Opsgenie, milestones) with their last success, last error "
        "and next scheduled run.",
    )
    st.add_argument("--team", "-t", help="team name (default: every team)")
    st.add_argument("--json", action="store_true", help="print JSON instead of text")

    cfg = sub.add_parser("config", help="team configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser)
    check = cfg_sub.add_parser("check", help="validate kpibot.yml, line by line")
    check.add_argument(
        "path", nargs="?", help="file to check (default $KPIBOT_CONFIG_YAML, else $KPIBOT_CONFIG)"
    )

    teams = sub.add_parser("teams", help="Microsoft Teams")
    teams_sub = teams.add_subparsers(dest="teams_command", metavar="ACTION", parser_class=_Parser)
    package = teams_sub.add_parser(
        "package",
        help="write the Teams app package (manifest and icons) to upload to Teams",
        description="Write the Teams app package: manifest.json with the bot id TEAMS_APP_ID "
        "and kpibot's commands, and its two icons, zipped for Teams' 'Upload an app'.",
    )
    package.add_argument(
        "--out", default="kpibot-teams.zip", metavar="PATH", help="default kpibot-teams.zip"
    )
    package.add_argument(
        "--website",
        metavar="URL",
        help="your kpibot's web page (https://, default https://kpibot.example.com); the "
        "manifest links its /privacy and /terms pages too",
    )
    return p


def _common(p: argparse.ArgumentParser, period_default: str) -> None:
    p.add_argument("--team", "-t", help="team name (default: the first team in kpibot.yml)")
    p.add_argument(
        "--period",
        "-p",
        help=f"last-week, this-week, last-month, this-month, 2026-W46, 2026-10, 2026-Q3, 28d, "
        f"90d (default {period_default})",
    )
    p.add_argument(
        "--now",
        metavar="ISO-TIME",
        help="compute as of this moment instead of the current time (e.g. 2026-11-20T09:00Z)",
    )


# --- helpers ------------------------------------------------------------------------------


def _now(arg: str | None) -> datetime:
    if not arg:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        dt = datetime.fromisoformat(arg.replace("Z", "+00:00"))
    except ValueError:
        raise KpibotError(
            f"--now '{arg}' is not an ISO 8601 time; write e.g. 2026-11-20T09:00:00Z"
        ) from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def _team(config: Config, name: str | None) -> TeamConfig:
    if name:
        return config.team(name)
    if not config.teams:
        raise KpibotError(f"{config.path} has no teams")
    return config.teams[0]


class Context:
    def __init__(self, settings: Settings) -> None:
        from bot.store.session import make_engine, session_factory

        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.factory = session_factory(self.engine)

    def config(self) -> Config:
        from bot.settings import load_team_config

        return load_team_config(self.settings)


def _print(out: str) -> None:
    sys.stdout.write(out if out.endswith("\n") else out + "\n")


# --- commands -----------------------------------------------------------------------------


def cmd_report(ctx: Context, args: argparse.Namespace) -> int:
    from bot.metrics.engine import TeamEngine
    from bot.metrics.periods import parse_period
    from bot.store.session import require_schema, unit_of_work

    config = ctx.config()
    team = _team(config, args.team)
    word = args.metric.strip().lower()
    try:
        metric_id = word if word in SPECIAL_REPORTS else registry.resolve(word).id
    except UnknownMetric as exc:
        raise UnknownMetric(str(exc).rstrip(".") + ", dora, health.") from None
    now = _now(args.now)
    period = parse_period(args.period or "28d", team.zone, now)
    chart = _chart_path(args.chart)
    if args.phases and not chart:
        raise KpibotError("--phases goes with --chart: add --chart FILE.png")
    if chart and metric_id == "health":
        raise KpibotError("health has no chart: ask for a KPI's or dora's chart instead")
    from bot.reports.cards import PHASE_KEYS

    if args.phases and metric_id not in PHASE_KEYS:
        raise KpibotError(
            f"--phases is for {' and '.join(PHASE_KEYS)}, which have phases; {metric_id} has none"
        )
    require_schema(ctx.engine)
    from bot.reports.cards import build_card, build_dora, build_health

    if chart:  # matplotlib is loaded only when a chart is drawn; the module itself only here
        from bot.renderers import charts

    png: bytes | None = None
    render: Any
    if args.format == "json":
        from bot.renderers import jsonout as render
    else:
        from bot.renderers import text as render
    with unit_of_work(ctx.factory) as session:
        engine = TeamEngine(session, team, calendar=args.calendar)
        out: Any
        if metric_id == "dora":
            dora = build_dora(engine, period)
            out = render.dora(dora)
            if chart:
                png = charts.dora_png(dora.cards, dora.team, dora.edition)
        elif metric_id == "health":
            out = render.health(build_health(engine, period))
        else:
            card = build_card(engine, metric_id, period)
            out = render.card(card)
            if chart:
                png = charts.phase_png(card) if args.phases else charts.trend_png(card)
    if chart and png is not None:
        _write_chart(chart, png)
    _print(json.dumps(out, indent=2) if args.format == "json" else out)
    return 0


def _chart_path(arg: str | None) -> Path | None:
    if not arg:
        return None
    path = Path(arg)
    if path.suffix.lower() != ".png":
        raise KpibotError(f"--chart '{arg}' must name a .png file, e.g. --chart chart.png")
    if not path.parent.is_dir():
        raise KpibotError(f"--chart '{arg}': the folder {path.parent} does not exist")
    return path


def _write_chart(path: Path, png: bytes) -> None:
    try:
        path.write_bytes(png)
    except OSError as exc:
        raise KpibotError(f"could not write the chart to {path}: {exc.strerror}") from None
    sys.stderr.write(f"wrote the chart to {path}\n")


def _digest_period(kind: str, team: TeamConfig, word: str | None, now: datetime) -> Period:
    from bot.metrics.periods import last_complete_month, last_complete_week, parse_period

    if word:
        p = parse_period(word, team.zone, now)
        return p
    if kind == "weekly":
        return last_complete_week(now, team.zone)
    return last_complete_month(now, team.zone)


def cmd_digest(ctx: Context, args: argparse.Namespace) -> int:
    from bot.metrics.engine import TeamEngine
    from bot.store.session import require_schema, unit_of_work

    config = ctx.config()
    team = _team(config, args.team)
    kind = {"leading": "weekly", "lagging": "monthly"}.get(args.kind, args.kind)
    now = _now(args.now)
    period = _digest_period(kind, team, args.period, now)
    if args.chart and args.post:
        raise KpibotError("--chart writes a file; --post posts the digest with its chart already")
    if args.calendar and args.post:
        raise KpibotError(
            "--calendar only shows a digest: a posted digest counts time as the team's "
            "working_hours say; drop --calendar to post it"
        )
    require_schema(ctx.engine)
    if args.post:
        from bot.scheduler.commands import post_now

        return post_now(
            ctx.settings,
            ctx.factory,
            config,
            team,
            kind,
            period,
            now,
            channel=args.channel,
            out=_print,
        )
    if args.channel:
        raise KpibotError("--channel goes with --post: add --post to post the digest there")
    chart = _chart_path(args.chart)
    if chart and kind != "monthly":
        raise KpibotError("--chart is for the monthly digest (its DORA chart)")
    from bot.renderers import blocks, jsonout, text
    from bot.renderers.mrkdwn import Links
    from bot.reports.digests import build_monthly, build_weekly

    now_naive = now.astimezone(UTC).replace(tzinfo=None)
    with unit_of_work(ctx.factory) as session:
        engine = TeamEngine(session, team, calendar=args.calendar)
        if kind == "weekly":
            wd = build_weekly(engine, period, now_naive)
            rendered: Any = {
                "text": lambda: text.weekly(wd),
                "json": lambda: jsonout.weekly(wd),
                "blocks": lambda: blocks.weekly(wd, Links.of(ctx.settings)),
            }[args.format]()
        else:
            md = build_monthly(engine, period, now_naive)
            rendered = {
                "text": lambda: text.monthly(md),
                "json": lambda: jsonout.monthly(md),
                "blocks": lambda: blocks.monthly(md),
            }[args.format]()
            if chart:
                from bot.renderers import charts

                _write_chart(chart, charts.dora_png(md.dora, md.team, md.edition))
    _print(rendered if args.format == "text" else json.dumps(rendered, indent=2))
    return 0


def cmd_demo(ctx: Context, args: argparse.Namespace) -> int:
    from bot import demo
    from bot.settings import CONFIG_YAML_LABEL, load_team_config
    from bot.store.migrate import upgrade
    from bot.store.session import unit_of_work

    as_of = date.today()
    if args.as_of:
        try:
            as_of = date.fromisoformat(args.as_of)
        except ValueError:
            raise KpibotError(f"--as-of '{args.as_of}' is not a date; write YYYY-MM-DD") from None
    settings = ctx.settings
    from_env = bool(settings.config_yaml) and not args.config
    path = Path(args.config or settings.config_path)
    label = CONFIG_YAML_LABEL if from_env else str(path)
    written = not from_env and demo.write_config(path)
    try:
        config = load_team_config(settings, None if from_env else path)
        missing = demo.missing_teams(config)
        if missing:
            raise KpibotError(_demo_not_visible(settings, label, missing, args))
    except KpibotError:
        if written:
            path.unlink()  # nothing changes when the demo cannot be loaded
        raise
    if written:
        _print(f"wrote {path} with three demo teams (payments, mobile, platform)")
    else:
        _print(f"keeping the existing {label}")
    upgrade(ctx.engine)
    started = time.monotonic()
    _print(f"loading the demo organisation (six months up to {as_of.isoformat()})...")
    with unit_of_work(ctx.factory) as session:
        summary = demo.load(session, config, as_of, progress=_print)
    _print(
        f"loaded {summary.teams} teams, {summary.pull_requests} pull requests, "
        f"{summary.deployments} production deployments, {summary.incidents} incidents, "
        f"{summary.sprints} sprints and {summary.action_items} action items "
        f"in {time.monotonic() - started:.1f}s"
    )
    prefix = ""
    if args.config and path != Path(settings.config_path):
        prefix = f"KPIBOT_CONFIG={path} "
        if settings.config_yaml:
            prefix = "KPIBOT_CONFIG_YAML= " + prefix
    _print(
        f"next: {prefix}kpibot report cycle-time   ·   {prefix}kpibot report dora --team mobile"
        f"   ·   {prefix}kpibot digest weekly"
    )
    return 0


def _demo_not_visible(
    settings: Settings, label: str, missing: list[str], args: argparse.Namespace
) -> str:
    """Why the demo is not loaded beside another configuration, and the command that does."""
    from bot import demo

    other = demo.config_path_for_demo()
    teams = ", ".join(missing)
    command = f"kpibot demo --config {other}"
    if args.as_of:
        command += f" --as-of {args.as_of}"
    use = f"KPIBOT_CONFIG={other}"
    if settings.config_yaml:
        use = f"KPIBOT_CONFIG_YAML= {use}"
    return (
        f"{label} has no demo team{'s' if len(missing) > 1 else ''} {teams} (with the demo "
        f"repositories), so no configured team could see the demo data; nothing was loaded. "
        f"Run '{command}' to write the demo configuration there and load it, then add "
        f"{use} to the commands (e.g. '{use} kpibot report cycle-time')"
    )


def cmd_db(ctx: Context, args: argparse.Namespace) -> int:
    if args.db_command != "upgrade":
        raise KpibotError("say what to do with the database: 'kpibot db upgrade'")
    from bot.settings import has_team_config
    from bot.store.migrate import current_revision, upgrade
    from bot.store.session import unit_of_work, utc

    upgrade(ctx.engine)
    if has_team_config(ctx.settings):
        from bot.store.teams import sync_teams

        config = ctx.config()
        with unit_of_work(ctx.factory) as session:
            sync_teams(session, config, now=utc(datetime.now(UTC)))
    _print(f"database is at revision {current_revision(ctx.engine)} (latest)")
    return 0


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    if args.config_command != "check":
        raise KpibotError("say what to do with the configuration: 'kpibot config check'")
    from bot.settings import config_source, parse_config

    source, label = config_source(settings, args.path)
    config, problems = parse_config(source, label)
    if problems:
        for p in problems:
            sys.stderr.write(p + "\n")
        sys.stderr.write(f"{len(problems)} problem{'s' if len(problems) > 1 else ''} found\n")
        return EXIT_USAGE
    assert config is not None
    teams = ", ".join(f"{t.name} ({len(t.repos)} repos, {t.timezone})" for t in config.teams)
    _print(f"{label}: OK, {len(config.teams)} team{'s' if len(config.teams) > 1 else ''}: {teams}")
    return 0


RUN_MODES = ["socket", "http", "scheduler"]


def _port(text: str) -> int:
    """``--port``: a TCP port a server can listen on."""
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"must be a port number (1-65535), not '{text}'")
    return int(text)


def _listen(http_app: Any, host: str, port: int, *, threads: int, connection_limit: int) -> Any:
    """The waitress server on ``host:port``; a port in use or an unknown address is bad
    input (one line, exit 2)."""
    import errno

    from bot.surfaces.http import Server

    try:
        return Server(
            http_app, host=host, port=port, threads=threads, connection_limit=connection_limit
        )
    except ValueError:  # waitress: a host name that does not resolve
        problem = f"--host {host} is not a known address: use an IP address of this machine"
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            problem = (
                f"port {port} is already in use: choose another with --port (or PORT), or "
                "stop what uses it"
            )
        elif exc.errno in (errno.EACCES, errno.EPERM):
            problem = f"port {port} needs privileges kpibot does not have: use --port 1024 or above"
        elif exc.errno == errno.EADDRNOTAVAIL:
            problem = f"--host {host} is not an address of this machine: use one of its IPs"
        else:
            reason = exc.strerror or type(exc).__name__
            problem = f"cannot listen on {host} port {port} ({reason}): check --host and --port"
    raise KpibotError(problem)


def start_background(
    ctx: Context, args: argparse.Namespace, workers: ReportWorkers | None = None
) -> list[Callable[[], None]]:
    """Start the services that run beside the Slack app in ``kpibot run`` (the scheduler,
    unless --no-scheduler, computing its digests in the chat apps' report ``workers``);
    returns their stop functions, called in reverse order on exit."""
    stops: list[Callable[[], None]] = []
    if not args.no_scheduler:
        from bot.scheduler.commands import start_in_background

        stops.append(start_in_background(ctx.settings, ctx.factory, ctx.config, workers))
    return stops


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds serving so the finally below stops workers and services


def cmd_run(ctx: Context, args: argparse.Namespace) -> int:
    from bot.settings import SLACK_CREDENTIALS, chat_platforms
    from bot.store.session import require_schema

    settings = ctx.settings
    if args.mode == "socket" and not settings.slack_app_token:
        if settings.teams_app_id and not any(getattr(settings, f) for f in SLACK_CREDENTIALS):
            raise KpibotError(
                "Socket Mode is Slack's: Microsoft Teams reaches kpibot over HTTP, so run "
                "'kpibot run --mode http' (Teams posts to <your public URL>/api/messages)"
            )
        from bot.slack.app import missing

        raise missing("SLACK_APP_TOKEN")
    platforms = chat_platforms(settings)
    slack, teams = "slack" in platforms, "teams" in platforms
    mode = args.mode or ("socket" if slack and settings.slack_app_token else "http")
    if mode == "scheduler":
        from bot.scheduler.commands import run_blocking

        if args.no_scheduler:
            raise KpibotError(
                "--mode scheduler runs only the scheduler: drop --no-scheduler, or run the "
                "chat app with --mode http (or --mode socket for Slack)"
            )
        require_schema(ctx.engine)
        tune_gc(refreeze=True)  # freeze what the scheduler imported
        return run_blocking(settings, ctx.factory, ctx.config, _print)
    require_schema(ctx.engine)
    from bot.chat.workers import ReportWorkers, default_count

    kpi = None
    workers: ReportWorkers | None = None
    if slack:
        from bot.slack.app import create_app

        kpi = create_app(settings, mode=mode, report_workers=default_count(settings))
        workers = kpi.workers
    elif teams:  # no Slack app to share its report workers: Teams starts its own
        from bot.renderers.mrkdwn import Links

        workers = ReportWorkers(
            settings.database_url, ctx.config(), default_count(settings), Links.of(settings)
        )
        workers.warm_up()
    previous_sigterm = signal.signal(signal.SIGTERM, _stop_on_sigterm)  # how platforms stop
    stops = start_background(ctx, args, workers)
    try:
        if mode == "http":
            from bot.surfaces.http import plain_http_app, slack_http_app
            from bot.surfaces.webhooks import Webhooks, install

            port = args.port or settings.port
            http_app = slack_http_app(kpi, ctx.engine) if kpi else plain_http_app(ctx.engine)
            install(http_app, Webhooks(ctx.factory, ctx.config(), settings.webhook_secret))
            routes = ["POST /slack/events"] if kpi else []
            if teams:
                from bot.teams.app import install as install_teams

                surface = install_teams(
                    http_app, settings, ctx.factory, ctx.config(), workers=workers
                )
                stops.append(surface.close)
                routes.append("POST /api/messages (Teams)")
            tune_gc(refreeze=True)  # freeze what the served apps imported and built
            server = _listen(
                http_app,
                args.host,
                port,
                threads=settings.http_threads,
                connection_limit=settings.http_connections,
            )
            served = " and ".join(_PLATFORM_NAMES[p] for p in platforms)
            _print(
                f"kpibot serving {served}, listening on {args.host} port {server.port}: "
                f"{', '.join(routes)}, GET /healthz, POST /webhooks/deployments, "
                "/webhooks/incidents, /webhooks/github"
            )
            server.serve_forever()
        else:
            import threading

            from slack_bolt.adapter.socket_mode import SocketModeHandler
            from slack_sdk.errors import SlackApiError

            from bot.slack.app import missing

            assert kpi is not None
            handler = SocketModeHandler(kpi.bolt, settings.slack_app_token)
            tune_gc(refreeze=True)  # freeze what the served app imported and built
            try:
                handler.connect()
            except SlackApiError as exc:
                error = exc.response.get("error") or f"HTTP {exc.response.status_code}"
                raise missing("SLACK_APP_TOKEN", f"was refused by Slack ({error})") from None
            unserved = (
                " (Microsoft Teams is not served in Socket Mode: run 'kpibot run --mode http' "
                "to serve it too)"
                if teams
                else ""
            )
            _print(f"kpibot serving Slack over Socket Mode{unserved}; press Ctrl+C to stop")
            threading.Event().wait()
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
        for stop in reversed(stops):
            stop()
        if kpi is not None:
            kpi.close()
        elif workers is not None:
            workers.close()
    return 0


_PLATFORM_NAMES = {"slack": "Slack", "teams": "Microsoft Teams"}


def cmd_teams(settings: Settings, args: argparse.Namespace) -> int:
    if args.teams_command != "package":
        raise KpibotError("say what to do: 'kpibot teams package [--out kpibot-teams.zip]'")
    from bot.teams.package import DEFAULT_WEBSITE, write_package

    out = Path(args.out)
    if out.is_dir() or not out.parent.is_dir():
        raise KpibotError(f"--out {args.out}: name a .zip file in an existing folder")
    doc = write_package(out, settings.teams_app_id, args.website or DEFAULT_WEBSITE)
    commands = len(doc["bots"][0]["commandLists"][0]["commands"])
    _print(
        f"wrote {out} (manifest {doc['manifestVersion']}, bot {doc['bots'][0]['botId']}, "
        f"{commands} commands): upload it in Teams -> Apps -> Manage your apps -> Upload an app"
    )
    return 0


def _check_agreements(ctx: Context, config: Config, team: str | None, now: datetime) -> None:
    """After a sync: check the working agreements (the running bot announces new breaches)."""
    from bot.reports.agreements import check_team

    with ctx.factory() as s:
        for t in config.teams:
            if team is None or t.name.lower() == team.lower():
                check_team(s, t, now.astimezone(UTC).replace(tzinfo=None, microsecond=0))
        s.commit()


def cmd_sync(ctx: Context, args: argparse.Namespace) -> int:
    from bot.sources.sync import LineProgress, Progress, TerminalProgress, sync_all
    from bot.store.session import require_schema

    config = ctx.config()
    if args.team:
        config.team(args.team)  # an unknown team is bad input
    require_schema(ctx.engine)
    progress: Progress = (
        TerminalProgress(sys.stdout) if sys.stdout.isatty() else LineProgress(_print)
    )
    now = _now(args.now)
    summary = sync_all(
        ctx.settings,
        ctx.factory,
        team=args.team,
        full=args.full,
        out=progress,
        config=config,
        now=now,
    )
    _check_agreements(ctx, config, args.team, now)
    if summary.github_token_missing is not None:
        raise summary.github_token_missing  # the other sources synced; GitHub did not
    return 0 if summary.ok else 1


def cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    from bot.reports.freshness import build_status
    from bot.store.session import require_schema, unit_of_work

    config = ctx.config()
    teams = [config.team(args.team)] if args.team else list(config.teams)
    if not teams:
        raise KpibotError(f"{config.path} has no teams")
    require_schema(ctx.engine)
    now = _now(None)
    with unit_of_work(ctx.factory) as session:
        reports = [build_status(session, t, now) for t in teams]
    if args.json:
        from bot.renderers import jsonout

        out: Any = [jsonout.source_status(r) for r in reports]
        _print(json.dumps(out[0] if args.team else out, indent=2))
    else:
        from bot.renderers import text

        _print("\n\n".join(text.source_status(r) for r in reports))
    return 0


COMMANDS: dict[str, Callable[[Context, argparse.Namespace], int]] = {
    "report": cmd_report,
    "digest": cmd_digest,
    "demo": cmd_demo,
    "db": cmd_db,
    "run": cmd_run,
    "sync": cmd_sync,
    "status": cmd_status,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (2 for bad input)."""
    tune_gc()
    logging.basicConfig(
        level=os.environ.get("KPIBOT_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from bot.settings import load_env_settings

    try:
        settings = load_env_settings()
        if args.command == "config":
            return cmd_config(settings, args)
        if args.command == "teams":
            return cmd_teams(settings, args)
        return COMMANDS[args.command](Context(settings), args)
    except KpibotError as exc:
        sys.stderr.write(f"kpibot: {exc}\n")
        return EXIT_USAGE
    except (OperationalError, ProgrammingError) as exc:
        log.debug("database error", exc_info=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        sys.stderr.write(
            f"kpibot: the database could not be used ({reason}); check DATABASE_URL and that "
            "the database is running, then run 'kpibot db upgrade'\n"
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("kpibot: interrupted\n")
        return 130
