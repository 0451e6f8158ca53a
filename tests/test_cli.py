"""The command line as a user runs it: demo data, reports, digests, bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.metrics import registry
from bot.store.session import make_engine, normalise_url
from bot.surfaces.cli import main
from tests.conftest import PG_URL, create_schema

AS_OF = "2026-11-20"
NOW = "2026-11-20T12:00:00Z"
REPORT_KEYS = {
    "metric",
    "team",
    "period",
    "n",
    "value",
    "unit",
    "p50",
    "p75",
    "p90",
    "target",
    "status",
    "previous",
    "trend",
    "change",
    "change_unit",
    "band",
    "breakdown",
    "so_far",
    "data_as_of",
    "excluded",
}


@pytest.fixture
def workdir(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("KPIBOT_CONFIG", str(tmp_path / "kpibot.yml"))
    return tmp_path


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory, pg_schema_url: str | None) -> Iterator[Path]:
    """``kpibot demo`` run once for the module into a database of its own (a SQLite file, or a
    PostgreSQL schema beside the suite's); the tests using it only read it. Yields the folder
    holding the ``kpibot.yml`` it wrote, with ``DATABASE_URL`` in ``url.txt``."""
    root = tmp_path_factory.mktemp("demo")
    admin, schema = None, None
    if pg_schema_url is None:
        url = f"sqlite:///{root / 'kpibot.db'}"
    else:
        base = normalise_url(PG_URL)
        schema = f"kpibot_demo_{uuid.uuid4().hex[:10]}"
        admin = make_engine(base)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    create_schema(url)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("DATABASE_URL", url)
        mp.setenv("KPIBOT_CONFIG", str(root / "kpibot.yml"))
        assert main(["demo", "--as-of", AS_OF]) == 0
    (root / "url.txt").write_text(url, encoding="utf-8")
    yield root
    if admin is not None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def demo(
    workdir: Path,
    demo_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Path:
    monkeypatch.setenv("DATABASE_URL", (demo_db / "url.txt").read_text(encoding="utf-8"))
    shutil.copyfile(demo_db / "kpibot.yml", workdir / "kpibot.yml")
    capsys.readouterr()
    return workdir


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main([*argv, "--format", "json", "--now", NOW]) == 0
    return json.loads(capsys.readouterr().out)


def test_demo_writes_config_and_loads_every_team(workdir, capsys):
    assert main(["demo", "--as-of", AS_OF]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "loaded 3 teams" in out
    assert (workdir / "kpibot.yml").is_file()
    # a second run keeps the file and gives the same data
    assert main(["demo", "--as-of", AS_OF]) == 0
    again = capsys.readouterr().out
    assert "keeping the existing" in again
    assert out.splitlines()[-2].split(" in ")[0] == again.splitlines()[-2].split(" in ")[0]


@pytest.mark.parametrize("team", ["payments", "mobile", "platform"])
def test_every_metric_has_data_for_every_demo_team(demo, capsys, team):
    for spec in registry.METRICS:
        out = run_json(capsys, "report", spec.id, "--team", team, "--period", "90d")
        assert set(out) == REPORT_KEYS
        assert out["n"] > 0, f"{spec.id} has no data for {team}"
        assert out["value"] is not None
        assert out["status"] in ("on target", "off target")


def test_report_json_shape(demo, capsys):
    out = run_json(capsys, "report", "ct", "--team", "payments", "--period", "2026-10")
    assert set(out) == REPORT_KEYS
    assert out["metric"] == "cycle-time"
    assert out["unit"] == "seconds"
    # October 2026 in Europe/Berlin: CEST at the start, CET at the end
    assert out["period"] == {
        "label": "2026-10",
        "start": "2026-09-30T22:00:00Z",
        "end": "2026-10-31T23:00:00Z",
        "in_progress": False,
    }
    assert out["so_far"] is False
    # the demo's sources were last synced when its data ends (midnight UTC of --as-of)
    assert out["data_as_of"] == f"{AS_OF}T00:00:00Z"
    assert out["target"] == {"op": "<", "value": 48 * 3600}
    assert set(out["previous"]) == {"n", "value"}
    assert out["trend"] in ("better", "worse", "flat", "not enough data")
    assert set(out["breakdown"]) >= {"coding", "pickup", "review"}
    assert out["p50"] == out["value"] and out["p50"] <= out["p75"] <= out["p90"]
    rate = run_json(capsys, "report", "coverage", "--team", "payments")
    assert 0 <= rate["value"] <= 1 and rate["p50"] is None and rate["unit"] == "fraction"


def test_dora_and_health(demo, capsys):
    dora = run_json(capsys, "report", "dora", "--team", "mobile", "--period", "last-month")
    assert dora["edition"] == 2021
    assert [m["metric"] for m in dora["metrics"]] == list(registry.DORA)
    assert all(m["band"] in ("elite", "high", "medium", "low") for m in dora["metrics"])
    health = run_json(capsys, "report", "health", "--team", "platform")
    # every KPI of the registry: the demo teams have every source configured
    assert [m["metric"] for m in health["metrics"]] == [m.id for m in registry.METRICS]
    assert health["no_source"] == []
    assert health["with_data"] == len(registry.METRICS)
    assert health["on_target"] == sum(m["status"] == "on target" for m in health["metrics"])
    assert main(["report", "health", "--team", "platform", "--now", NOW]) == 0
    text = capsys.readouterr().out
    assert f"{health['on_target']} of {health['with_data']} KPIs with data on target" in text


def test_report_of_a_month_in_progress_says_so_far(demo, capsys):
    # 20 Nov 2026 12:00 UTC is 13:00 in Berlin: November so far is 19 days and 13 hours
    out = run_json(capsys, "report", "merges", "--team", "payments", "--period", "this-month")
    assert set(out) == REPORT_KEYS
    assert out["so_far"] is True
    assert out["period"] == {
        "label": "2026-11",
        "start": "2026-10-31T23:00:00Z",
        "end": "2026-11-20T12:00:00Z",
        "in_progress": True,
    }
    # JSON numbers are rounded at the source: fractions of a unit to 4 decimals
    assert out["breakdown"]["weeks"] == round((19 + 13 / 24) / 7, 4)
    assert out["value"] == pytest.approx(
        out["breakdown"]["merged"] / out["breakdown"]["authors"] / out["breakdown"]["weeks"],
        abs=1e-3,
    )
    args = ["report", "merges", "--team", "payments", "--period", "this-month", "--now", NOW]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert text.startswith("Merge frequency · payments · November 2026 so far (Nov 1 – Nov 20)")
    args = ["digest", "weekly", "--team", "payments", "--period", "this-week", "--now", NOW]
    assert main([*args, "--format", "blocks"]) == 0
    blocks = json.loads(capsys.readouterr().out)
    assert "2026-W47 so far" in blocks["text"]
    assert "week 2026-W47 so far (Nov 16 – Nov 20)" in json.dumps(blocks, ensure_ascii=False)


def test_text_card(demo, capsys):
    assert main(["report", "cycle-time", "--now", NOW]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Cycle time · payments · last 28 days")
    assert "n = " in out and "phases (p50): coding" in out and "last 8 periods:" in out


@pytest.mark.parametrize("kind", ["weekly", "monthly"])
@pytest.mark.parametrize("fmt", ["text", "json", "blocks"])
def test_digests_render(demo, capsys, kind, fmt):
    assert main(["digest", kind, "--team", "payments", "--format", fmt, "--now", NOW]) == 0
    out = capsys.readouterr().out
    if fmt == "text":
        assert ("Weekly leading" if kind == "weekly" else "Monthly lagging") in out
        return
    data = json.loads(out)
    if fmt == "json":
        assert data["digest"] == kind
        expected = "2026-W46" if kind == "weekly" else "2026-10"
        assert data["period"]["label"] == expected
    else:
        assert data["text"] and 0 < len(data["blocks"]) <= 50
        for b in data["blocks"]:
            if b["type"] == "section" and "text" in b:
                assert len(b["text"]["text"]) <= 3000


def test_weekly_digest_lists_waiting_prs_and_overdue_items(demo, capsys):
    data = run_json(capsys, "digest", "weekly", "--team", "payments")
    overdue = [i for i in data["open_action_items"] if i["overdue"]]
    assert overdue and all(i["due_on"] < AS_OF for i in overdue)
    assert len(data["waiting_for_review"]) <= 10
    assert data["biggest_phase"]["phase"] in ("coding", "pickup", "review")


def one_line_error(capsys, argv: list[str], *expected: str) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in captured.err + captured.out
    for e in expected:
        assert e in err
    return err


def test_bad_input_is_one_line_and_exit_2(demo, capsys):
    one_line_error(capsys, ["report", "cyle-time"], "unknown metric 'cyle-time'", "cycle-time")
    one_line_error(capsys, ["report", "ct", "--team", "paymnts"], "unknown team", "'payments'")
    one_line_error(capsys, ["report", "ct", "--period", "last-wek"], "unknown period", "last-week")
    one_line_error(capsys, ["report", "ct", "--period", "2026-W60"], "no ISO week 60")
    one_line_error(capsys, ["report", "ct", "--period", "2026-13"], "not a month")
    one_line_error(capsys, ["report", "ct", "--now", "yesterday"], "not an ISO 8601 time")
    one_line_error(capsys, ["report", "ct", "--format", "xml"], "invalid choice")
    one_line_error(capsys, ["digest", "daily"], "invalid choice")
    one_line_error(capsys, ["bogus"], "invalid choice")


def test_broken_config_is_one_line(demo, capsys):
    (demo / "kpibot.yml").write_text(
        "teams:\n  - name: payments\n    timezone: Mars/Base\n    repos: [acme/api]\n"
    )
    err = one_line_error(capsys, ["report", "ct"], "kpibot.yml:3", "unknown time zone")
    assert "Mars/Base" in err
    (demo / "kpibot.yml").write_text("teams: [\n")
    one_line_error(capsys, ["report", "ct"], "not valid YAML")
    (demo / "kpibot.yml").unlink()
    one_line_error(capsys, ["report", "ct"], "no team configuration", "kpibot demo")


def test_missing_database_says_what_to_do(workdir, capsys, monkeypatch, tmp_path):
    (workdir / "kpibot.yml").write_text("teams:\n  - name: a\n    repos: [o/r]\n")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    one_line_error(capsys, ["report", "ct"], "kpibot db upgrade")
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    one_line_error(capsys, ["report", "ct"], "check DATABASE_URL")


def test_db_upgrade_syncs_teams(workdir, capsys, monkeypatch, tmp_path):
    (workdir / "kpibot.yml").write_text("teams:\n  - name: a\n    repos: [o/r]\n")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    assert main(["db", "upgrade"]) == 0
    assert "latest" in capsys.readouterr().out
    out = run_json(capsys, "report", "ct")
    assert out["n"] == 0 and out["value"] is None and out["status"] == "no data"


def test_console_script_quickstart(tmp_path):
    """The README's quickstart, as a user types it."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'kpibot.db'}"}
    env.pop("KPIBOT_CONFIG", None)
    exe = Path(sys.executable).parent / "kpibot"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "bot"]
    demo = subprocess.run(
        [*cmd, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert demo.returncode == 0, demo.stderr
    rep = subprocess.run(
        [*cmd, "report", "cycle-time"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rep.returncode == 0, rep.stderr
    assert rep.stdout.startswith("Cycle time · payments")


def _modules_loaded(argv: list[str], cwd: Path) -> tuple[int, set[str]]:
    """Run the command line in a fresh interpreter; its exit code and the modules it loaded."""
    code = (
        "import sys\n"
        "from bot.surfaces.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "sys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)))\n"
        "raise SystemExit(rc)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    return r.returncode, set(r.stderr.split("MODULES ", 1)[1].split())


def _families(modules: set[str], prefixes: tuple[str, ...]) -> set[str]:
    return {m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)}


def test_help_loads_neither_the_database_nor_the_configuration(tmp_path):
    rc, modules = _modules_loaded(["--help"], tmp_path)
    assert rc == 0
    assert not _families(
        modules, ("sqlalchemy", "yaml", "bot.store", "bot.metrics.engine", "bot.settings")
    )


def test_report_loads_no_chat_scheduler_source_or_server_modules(demo):
    rc, modules = _modules_loaded(["report", "cycle-time", "--now", NOW], demo)
    assert rc == 0
    assert "bot.metrics.engine" in modules  # it did compute the card
    assert not _families(
        modules,
        (
            "bot.slack",
            "bot.chat",
            "bot.scheduler",
            "bot.sources",
            "bot.surfaces.http",
            "bot.surfaces.webhooks",
            "bot.renderers.jsonout",
            "bot.renderers.blocks",
            "slack_sdk",
            "slack_bolt",
            "waitress",
            "httpx",
            "alembic",
        ),
    )


#: what a metric card in the terminal must not load: charts (matplotlib, numpy, Pillow), the
#: chat platforms' SDKs, HTTP clients, the scheduler, migrations, holiday calendars, digests
HEAVY_FOR_A_CARD = (
    "matplotlib",
    "numpy",
    "PIL",
    "microsoft_teams",
    "msal",
    "jwt",
    "slack_sdk",
    "slack_bolt",
    "httpx",
    "requests",
    "apscheduler",
    "alembic",
    "holidays",
    "jsonschema",
    "bot.teams",
    "bot.renderers.charts",
    "bot.renderers.adaptive",
    "bot.reports.digests",
)


def test_report_card_loads_no_chart_sdk_or_http_library(demo):
    for argv in (["report", "cycle-time"], ["report", "dora", "--team", "mobile"]):
        rc, modules = _modules_loaded([*argv, "--now", NOW], demo)
        assert rc == 0
        assert "bot.reports.cards" in modules and "sqlalchemy.orm" in modules
        assert not _families(modules, HEAVY_FOR_A_CARD), argv


def test_report_chart_loads_matplotlib_and_writes_the_png(demo):
    rc, modules = _modules_loaded(
        ["report", "cycle-time", "--chart", "trend.png", "--now", NOW], demo
    )
    assert rc == 0
    assert "matplotlib" in modules and "bot.renderers.charts" in modules
    assert (demo / "trend.png").read_bytes().startswith(b"\x89PNG")
    for name, argv in (
        ("phases.png", ["report", "cycle-time", "--phases"]),
        ("dora.png", ["report", "dora", "--team", "payments"]),
    ):
        assert main([*argv, "--chart", str(demo / name), "--now", NOW]) == 0
        assert (demo / name).read_bytes().startswith(b"\x89PNG")
