"""Operable failures: what an operator or a new user sees when a setting is missing or wrong.
One line saying what is wrong and what to do, exit code 2, nothing half done."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.scheduler.jobs import DigestJobs
from bot.settings import Settings, load_config
from bot.store.models import Incident, Team
from bot.store.session import session_factory
from bot.surfaces.cli import main
from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.server import FakeServer
from tests.scheduler_fakes import SchedulerSlack, poster_for
from tests.test_cli import one_line_error

NOW = "2026-11-20T09:00:00Z"
GITHUB_ONLY = """\
teams:
  - name: payments
    repos: [acme/api]
  - name: web
    repos: [acme/web]
    incidents: {source: webhook}
"""
WITH_PAGERDUTY = """\
teams:
  - name: payments
    repos: [acme/api]
    incidents: {source: pagerduty, services: [PSVC1]}
"""


@pytest.fixture
def workdir(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("KPIBOT_CONFIG", str(tmp_path / "kpibot.yml"))
    for name in ("GITHUB_TOKEN", "KPIBOT_CONFIG_YAML", "GITHUB_API_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def github() -> Iterator[FakeServer]:
    """A loopback server standing in for GitHub: it records every request that reaches it."""
    with FakeServer() as server:
        yield server


# --- kpibot sync without GITHUB_TOKEN -------------------------------------------------------


def test_sync_without_github_token_stops_with_what_to_set(
    workdir, github, capsys, monkeypatch, engine
):
    (workdir / "kpibot.yml").write_text(GITHUB_ONLY, encoding="utf-8")
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    err = one_line_error(
        capsys, ["sync", "--now", NOW], "GITHUB_TOKEN is not set", "teams payments, web"
    )
    assert "/settings/tokens" in err and "read access" in err
    assert github.requests == []  # GitHub was never asked
    with session_factory(engine)() as s:  # and nothing was stored
        assert s.scalar(select(func.count()).select_from(Team)) == 0


def test_the_token_page_follows_github_api_url(workdir, capsys, monkeypatch):
    (workdir / "kpibot.yml").write_text(GITHUB_ONLY, encoding="utf-8")
    one_line_error(capsys, ["sync", "--team", "web"], "team web reads GitHub",
                   "https://github.com/settings/tokens")  # fmt: skip
    monkeypatch.setenv("GITHUB_API_URL", "https://ghe.acme.io/api/v3")
    one_line_error(capsys, ["sync"], "https://ghe.acme.io/settings/tokens")


def test_sync_without_github_token_still_syncs_the_other_sources(
    workdir, github, capsys, monkeypatch, engine
):
    (workdir / "kpibot.yml").write_text(WITH_PAGERDUTY, encoding="utf-8")
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    with FakePagerDuty() as pd:
        pd.add(1, "PSVC1", "2026-10-10 10:00", "2026-10-10 10:20")
        monkeypatch.setenv("PAGERDUTY_API_TOKEN", "pd-token")
        monkeypatch.setenv("PAGERDUTY_API_URL", pd.url)
        assert main(["sync", "--now", NOW]) == 2
    captured = capsys.readouterr()
    assert "payments: incidents from pagerduty: 1 records" in captured.out
    assert captured.err.strip().startswith("kpibot: GITHUB_TOKEN is not set")
    assert len(captured.err.strip().splitlines()) == 1
    assert github.requests == []
    with session_factory(engine)() as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 1


def test_the_periodic_sync_without_github_token_logs_one_warning(workdir, github, engine, caplog):
    (workdir / "kpibot.yml").write_text(GITHUB_ONLY, encoding="utf-8")
    config = load_config(workdir / "kpibot.yml")
    with SchedulerSlack() as slack:
        jobs = DigestJobs(session_factory(engine), config, poster_for(slack))
        with caplog.at_level(logging.WARNING, logger="kpibot.scheduler"):
            ok = jobs.sync(Settings(github_api_url=github.url), datetime(2026, 11, 20, tzinfo=UTC))
    assert ok is False
    lines = [r for r in caplog.records if r.name == "kpibot.scheduler"]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert "GITHUB_TOKEN is not set" in lines[0].getMessage() and lines[0].exc_info is None
    assert github.requests == []


# --- DATABASE_URL that kpibot cannot use ----------------------------------------------------

DB_COMMANDS = [
    ["report", "cycle-time"],
    ["digest", "weekly"],
    ["demo"],
    ["db", "upgrade"],
    ["sync"],
    ["run", "--mode", "scheduler"],
]


@pytest.mark.parametrize("argv", DB_COMMANDS, ids=lambda a: " ".join(a))
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://kpi:s3cret-pw@db.internal/kpi", "'mysql' database, which kpibot does not"),
        ("postgresql+psycopg2://kpi:s3cret-pw@db/kpi", "driver 'postgresql+psycopg2'"),
        ("postgresql://kpi:s3cret-pw@db:port/kpi", "not a database URL kpibot can read"),
        ("kpibot.db", "not a database URL kpibot can read"),
    ],
    ids=["other-database", "missing-driver", "bad-port", "not-a-url"],
)
def test_a_database_url_kpibot_cannot_use_is_one_line(
    workdir, capsys, monkeypatch, argv, url, expected
):
    (workdir / "kpibot.yml").write_text(GITHUB_ONLY, encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    err = one_line_error(capsys, argv, "DATABASE_URL", expected, "sqlite", "postgresql://")
    assert "s3cret-pw" not in err  # the password never reaches the terminal


def test_demo_with_a_bad_database_url_writes_nothing(workdir, capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://localhost/kpi")
    one_line_error(capsys, ["demo"], "DATABASE_URL")
    assert not (workdir / "kpibot.yml").exists()


# --- kpibot demo beside another configuration -----------------------------------------------

OWN_CONFIG = "teams:\n  - name: core\n    repos: [acme/core]\n"
AS_OF = "2026-11-20"


def test_demo_beside_another_config_loads_nothing_and_gives_the_command(workdir, capsys, engine):
    (workdir / "kpibot.yml").write_text(OWN_CONFIG, encoding="utf-8")
    err = one_line_error(
        capsys,
        ["demo", "--as-of", AS_OF],
        "kpibot.yml has no demo teams payments, mobile, platform",
        f"'kpibot demo --config kpibot-demo.yml --as-of {AS_OF}'",
        "'KPIBOT_CONFIG=kpibot-demo.yml kpibot report cycle-time'",
    )
    assert "nothing was loaded" in err
    assert (workdir / "kpibot.yml").read_text(encoding="utf-8") == OWN_CONFIG
    assert not (workdir / "kpibot-demo.yml").exists()
    with session_factory(engine)() as s:
        assert s.scalar(select(func.count()).select_from(Team)) == 0


def test_demo_with_a_config_path_writes_and_uses_it(workdir, capsys, monkeypatch):
    (workdir / "kpibot.yml").write_text(OWN_CONFIG, encoding="utf-8")
    assert main(["demo", "--as-of", AS_OF, "--config", "kpibot-demo.yml"]) == 0
    out = capsys.readouterr().out
    assert "wrote kpibot-demo.yml" in out and "loaded 3 teams" in out
    assert "next: KPIBOT_CONFIG=kpibot-demo.yml kpibot report cycle-time" in out
    assert (workdir / "kpibot.yml").read_text(encoding="utf-8") == OWN_CONFIG
    # the command it gave works
    monkeypatch.setenv("KPIBOT_CONFIG", "kpibot-demo.yml")
    assert main(["report", "cycle-time", "--team", "mobile", "--now", NOW]) == 0
    assert "n = 0" not in capsys.readouterr().out
    # again: the file is kept and reused
    monkeypatch.setenv("KPIBOT_CONFIG", str(workdir / "kpibot.yml"))
    assert main(["demo", "--as-of", AS_OF, "--config", "kpibot-demo.yml"]) == 0
    assert "keeping the existing kpibot-demo.yml" in capsys.readouterr().out


def test_demo_config_path_holding_another_config_suggests_a_free_one(workdir, capsys):
    (workdir / "kpibot-demo.yml").write_text(OWN_CONFIG, encoding="utf-8")
    one_line_error(
        capsys,
        ["demo", "--config", "kpibot-demo.yml"],
        "kpibot-demo.yml has no demo teams",
        "'kpibot demo --config kpibot-demo-2.yml'",
    )


# --- the configuration from KPIBOT_CONFIG_YAML ----------------------------------------------

ENV_CONFIG = "teams:\n  - name: core\n    timezone: Europe/Berlin\n    repos: [acme/core]\n"


def test_the_whole_config_from_an_environment_variable(workdir, capsys, monkeypatch, engine):
    monkeypatch.delenv("KPIBOT_CONFIG")
    monkeypatch.setenv("KPIBOT_CONFIG_YAML", ENV_CONFIG)
    assert not (workdir / "kpibot.yml").exists()
    assert main(["config", "check"]) == 0
    assert (
        "KPIBOT_CONFIG_YAML: OK, 1 team: core (1 repos, Europe/Berlin)" in capsys.readouterr().out
    )
    assert main(["db", "upgrade"]) == 0  # the release step stores the configured teams
    capsys.readouterr()
    with session_factory(engine)() as s:
        assert list(s.scalars(select(Team.name))) == ["core"]
    assert main(["report", "cycle-time", "--now", NOW]) == 0
    assert capsys.readouterr().out.startswith("Cycle time · core")


def test_problems_in_the_environment_config_have_their_lines(workdir, capsys, monkeypatch):
    monkeypatch.delenv("KPIBOT_CONFIG")
    monkeypatch.setenv("KPIBOT_CONFIG_YAML", ENV_CONFIG.replace("Europe/Berlin", "Mars/Base"))
    assert main(["config", "check"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("KPIBOT_CONFIG_YAML:3: unknown time zone 'Mars/Base'")
    assert err[-1] == "1 problem found"
    one_line_error(capsys, ["report", "cycle-time"], "KPIBOT_CONFIG_YAML:3: unknown time zone")
    monkeypatch.setenv("KPIBOT_CONFIG_YAML", "teams:\n  - name: core\n")
    one_line_error(capsys, ["sync"], "KPIBOT_CONFIG_YAML:2: team 'core' has no repos")


def test_the_environment_config_from_a_dotenv_file(workdir, capsys, monkeypatch):
    monkeypatch.delenv("KPIBOT_CONFIG")
    (workdir / ".env").write_text(f'KPIBOT_CONFIG_YAML="{ENV_CONFIG}"\n', encoding="utf-8")
    assert main(["config", "check"]) == 0
    assert "KPIBOT_CONFIG_YAML: OK, 1 team: core" in capsys.readouterr().out


def test_config_file_and_config_yaml_together_are_one_line(workdir, capsys, monkeypatch):
    monkeypatch.setenv("KPIBOT_CONFIG_YAML", ENV_CONFIG)
    one_line_error(
        capsys, ["report", "cycle-time"], "KPIBOT_CONFIG and KPIBOT_CONFIG_YAML are both set"
    )


# --- the Procfile deploy ---------------------------------------------------------------------


def _procfile_release(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The Procfile's release command, run by a shell as the platform runs it."""
    root = Path(__file__).resolve().parents[1]
    line = next(x for x in (root / "Procfile").read_text().splitlines() if x.startswith("release:"))
    bindir = str(Path(sys.executable).parent)
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("KPIBOT_", "DATABASE"))}
    run_env.update(env, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.run(
        ["sh", "-c", line.split(":", 1)[1].strip()],
        cwd=tmp_path,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_procfile_release_takes_the_config_from_the_environment(tmp_path):
    url = f"sqlite:///{tmp_path / 'kpibot.db'}"
    done = _procfile_release(tmp_path, {"DATABASE_URL": url, "KPIBOT_CONFIG_YAML": ENV_CONFIG})
    assert done.returncode == 0, done.stderr
    assert "KPIBOT_CONFIG_YAML: OK, 1 team" in done.stdout and "latest" in done.stdout
    from bot.store.session import make_engine

    eng = make_engine(url)
    with session_factory(eng)() as s:
        assert list(s.scalars(select(Team.name))) == ["core"]
    eng.dispose()
    broken = ENV_CONFIG.replace("Europe/Berlin", "Mars/Base")
    done = _procfile_release(tmp_path, {"DATABASE_URL": url, "KPIBOT_CONFIG_YAML": broken})
    assert done.returncode == 2
    assert done.stderr.startswith("KPIBOT_CONFIG_YAML:3: unknown time zone 'Mars/Base'")
    assert "latest" not in done.stdout  # the database step did not run
