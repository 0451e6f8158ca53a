"""The fake Slack Web API plus what the scheduler needs: kept messages, channel history with
message metadata, DM channels, archived channels, and a hold after a post (to kill a process
between Slack accepting a message and the process recording it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.scheduler.posting import Poster, RetryPolicy, SlackPoster
from bot.settings import Config, TeamConfig
from bot.store import subscriptions
from bot.store.models import ActionItem, DigestRun
from bot.store.teams import sync_teams
from tests.fakes.slack import BOT_TOKEN, FakeSlack


class SchedulerSlack(FakeSlack):
    def __init__(self) -> None:
        super().__init__()
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.hold_after_post = 0.0  # seconds to wait before answering a successful post
        self.posted = threading.Event()
        self._msg_lock = threading.Lock()

    def archive(self, channel_id: str) -> None:
        if channel_id not in self.channels:
            self.add_channel(channel_id)
        self.channels[channel_id]["is_archived"] = True

    def _channel_error(self, channel: str | None) -> str | None:
        error = super()._channel_error(channel)
        if error is None and channel in self.channels and self.channels[channel]["is_archived"]:
            return "is_archived"
        return error

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages kept, oldest first (every channel, or one)."""
        with self._msg_lock:
            if channel is not None:
                return list(self.messages.get(channel, []))
            return [m for ms in self.messages.values() for m in ms]

    def keys(self) -> list[str]:
        """The kpibot run keys of every kept message, in posting order."""
        out = []
        for m in sorted(self.posts(), key=lambda m: float(m["ts"])):
            meta = m.get("metadata") or {}
            out.append(str((meta.get("event_payload") or {}).get("key")))
        return out

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        result = super()._m_chat_postMessage(args)
        if result.get("ok"):
            meta = args.get("metadata")
            if isinstance(meta, str):
                meta = json.loads(meta)
            msg = {
                "type": "message",
                "ts": result["ts"],
                "user": "UBOT0001",
                "bot_id": "BFAKE001",
                "text": args.get("text"),
                "blocks": args.get("blocks"),
                "metadata": meta,
                "channel": result["channel"],
            }
            with self._msg_lock:
                self.messages.setdefault(result["channel"], []).append(msg)
            self.posted.set()
            if self.hold_after_post:
                time.sleep(self.hold_after_post)
        return result

    def _m_conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("users") or "")
        if not user or "," in user:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "channel": {"id": "D" + user.lstrip("UW")}}

    def _m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        error = self._channel_error(channel) if not channel.startswith("D") else None
        if error and error != "is_archived":
            return {"ok": False, "error": error}
        oldest = float(args.get("oldest") or 0)
        limit = int(args.get("limit") or 100)
        start = int(args.get("cursor") or 0)
        with_meta = str(args.get("include_all_metadata")).lower() in ("true", "1")
        msgs = [m for m in reversed(self.posts(channel)) if float(m["ts"]) > oldest]
        page = msgs[start : start + limit]
        out = []
        for m in page:
            shown = {k: v for k, v in m.items() if k != "channel"}
            if not with_meta:
                shown.pop("metadata", None)
            out.append(shown)
        more = start + limit < len(msgs)
        return {
            "ok": True,
            "messages": out,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }


# --- a two-zone organisation for scheduler tests ---------------------------------------------

BERLIN_TEAM = TeamConfig(name="berlin", timezone="Europe/Berlin", repos=("acme/berlin-api",))
NYC_TEAM = TeamConfig(name="nyc", timezone="America/New_York", repos=("acme/nyc-api",))
ORG = Config((BERLIN_TEAM, NYC_TEAM))


def fast_policy(**kw: Any) -> RetryPolicy:
    """Short waits for tests."""
    base: dict[str, Any] = {"backoff": 0.01, "max_backoff": 0.05, "pace": 0.0, "timeout": 5.0}
    base.update(kw)
    return RetryPolicy(**base)


def poster_for(slack: FakeSlack, **kw: Any) -> SlackPoster:
    return SlackPoster(BOT_TOKEN, slack.api_url, policy=fast_policy(**kw))


def setup_org(factory: sessionmaker[Session], config: Config = ORG) -> dict[str, int]:
    with factory() as s:
        ids = sync_teams(s, config)
        s.commit()
    return ids


def subscribe(
    factory: sessionmaker[Session],
    team_id: int,
    channel: str,
    kind: str,
    at: datetime,
    *,
    schedule: str | None = None,
    by: str | None = "UADMIN1",
) -> int:
    with factory() as s:
        sub, _ = subscriptions.subscribe(
            s,
            platform="slack",
            channel_id=channel,
            team_id=team_id,
            kind=kind,
            created_by=by,
            now=at.astimezone(UTC).replace(tzinfo=None),
            schedule=schedule,
        )
        s.commit()
    return sub.id


def add_item(
    factory: sessionmaker[Session], team_id: int, owner: str, due: date, text: str = "Slow reviews"
) -> int:
    with factory() as s:
        item = ActionItem(
            team_id=team_id,
            opportunity=text,
            resolution="Review rota",
            owner=owner,
            due_on=due,
            kpi="first-review",
            created_by="ULEAD1",
            created_at=datetime(2026, 10, 1, 9, 0),
        )
        s.add(item)
        s.commit()
        return item.id


def runs(factory: sessionmaker[Session]) -> list[DigestRun]:
    with factory() as s:
        return list(s.scalars(select(DigestRun).order_by(DigestRun.id)))


def offline_posters() -> dict[str, Poster]:
    """A Slack and a Teams poster for rendering only (their URLs are never called)."""
    from bot.scheduler.teams_poster import TeamsPoster
    from bot.teams.connector import Connector

    nowhere = "http://127.0.0.1:9"
    return {
        "slack": SlackPoster(BOT_TOKEN, f"{nowhere}/api/", policy=fast_policy()),
        "teams": TeamsPoster(
            Connector("app-id", "app-password", f"{nowhere}/token"), service_url=nowhere
        ),
    }


# --- the scheduler as a user runs it -----------------------------------------------------------


def scheduler_env(db_url: str, slack: FakeSlack, config: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``kpibot run --mode scheduler`` process posting to ``slack``
    (none of this process's own Slack or kpibot settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "KPIBOT_"))}
    env.update(
        DATABASE_URL=db_url,
        KPIBOT_CONFIG=str(config),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_API_URL=slack.api_url,
        **extra,
    )
    return env


def start_scheduler(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """``kpibot run --mode scheduler`` in a process of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--mode", "scheduler"],
        env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def run_scheduler_until_posted(
    env: dict[str, str], cwd: Path, slack: SchedulerSlack, posts: int, timeout: float = 60
) -> tuple[int, str, str]:
    """Run ``kpibot run --mode scheduler`` until ``slack`` keeps ``posts`` messages, then stop
    it as a platform does (SIGTERM); (exit code, stdout, stderr)."""
    proc = start_scheduler(env, cwd)
    try:
        deadline = time.monotonic() + timeout
        while len(slack.keys()) < posts:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                out, err = proc.communicate()
                raise AssertionError(
                    f"the scheduler posted {len(slack.keys())} of {posts}:\n{out}\n{err[-4000:]}"
                )
            time.sleep(0.2)
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err
