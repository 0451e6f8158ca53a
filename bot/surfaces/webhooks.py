"""Webhooks of HTTP mode, framework-neutral: verify, parse, validate, store idempotently.

``POST /webhooks/deployments`` and ``POST /webhooks/incidents`` take the JSON documented in
the README from any CI/CD or incident tool, authenticated by ``X-Kpibot-Timestamp: <unix
seconds>`` and ``X-Kpibot-Signature-256: sha256=<hex HMAC-SHA256 of "v1:<timestamp>:<body>"
with KPIBOT_WEBHOOK_SECRET>`` (see :func:`signature_base`), or by ``Authorization: Bearer
<KPIBOT_WEBHOOK_SECRET>`` with the same timestamp header (unsigned), or by GitLab's
``X-Gitlab-Token``. A timestamp more than :data:`MAX_SKEW` seconds away from the server's clock
is refused, so a captured signed delivery cannot be replayed later. ``POST /webhooks/github``
takes GitHub's ``pull_request``, ``pull_request_review``, ``deployment_status``,
``workflow_run`` and ``issues`` events signed with ``X-Hub-Signature-256`` (the same secret).

The signature is checked on the raw bytes before anything is parsed. Every write is an upsert
keyed by the provider's ids, so a redelivered event changes nothing, and a late one never
undoes a newer outcome (the rules of ``bot.ingest.rules.deployment_delivery_wins`` and
``incident_resolution``, in every upsert's ``WHERE``). An unverified request is 401, a verified
body that does not follow the schema 400 with the reason; neither stores anything. Answers are
``(status, JSON object)`` in a :class:`WebhookResult`; ``install`` mounts the three routes on
the HTTP-mode app.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Dialect, bindparam, func, select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session, sessionmaker

from bot.ingest import rules
from bot.settings import Config, TeamConfig
from bot.sources.github import (
    GitHubPayloadError,
    parse_deployment,
    parse_rest_issue,
    parse_rest_pull,
    parse_rest_review,
    parse_workflow_run,
)
from bot.store import links, population, source_health, writes
from bot.store.models import Deployment, Incident, PullRequest, Repository, Team
from bot.store.records import DeploymentRecord, IncidentRecord
from bot.store.session import unit_of_work
from bot.store.writes import upsert_pull_request, upsert_repository, upsert_reviews

if TYPE_CHECKING:
    from bot.surfaces.http import HttpApp

log = logging.getLogger("kpibot.webhooks")
T = TypeVar("T")

SIGNATURE_HEADER = "x-kpibot-signature-256"
TIMESTAMP_HEADER = "x-kpibot-timestamp"
DELIVERY_RECORD_EVERY = timedelta(minutes=1)  # how often a webhook source's freshness is stored
MAX_SKEW = 300  # seconds a delivery's timestamp may be away from the server's clock (as Slack)
GITHUB_SIGNATURE_HEADER = "x-hub-signature-256"
DEPLOYMENT_STATUSES = (
    "success",
    "failure",
    "error",
    "cancelled",
    "in_progress",
    "queued",
    "pending",
)
FINISHED_STATUSES = frozenset({"success", "failure", "error", "cancelled"})
GITHUB_EVENTS = (
    "pull_request",
    "pull_request_review",
    "deployment_status",
    "workflow_run",
    "issues",
)
_SHA = re.compile(r"[0-9a-fA-F]{7,64}")
_ID = re.compile(r"[^\s]{1,100}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # ASCII digits only (int() takes any Unicode digit)
# JSON escapes of characters no database takes in text: NUL and unpaired surrogates
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89abAB][0-9a-fA-F]{2})")


@dataclass(frozen=True)
class WebhookResult:
    status: int
    body: dict[str, Any]

    @property
    def json(self) -> bytes:
        return json.dumps(self.body).encode("utf-8")


class BadRequest(ValueError):
    """The body does not follow the schema; the message is the reason given back."""


def _ok(**body: Any) -> WebhookResult:
    return WebhookResult(200, {"ok": True, **body})


UNCHANGED = "nothing newer than what is stored (a redelivery or a late event)"
LATE_DEPLOYMENT = "a later outcome of this deployment is already stored"
LATE_INCIDENT = "a later state of this incident is already stored"


def _bad(reason: str) -> WebhookResult:
    return WebhookResult(400, {"ok": False, "error": reason})


def _unauthorized(reason: str) -> WebhookResult:
    return WebhookResult(401, {"ok": False, "error": reason})


# --------------------------------------------------------------------------- signatures


def sign(secret: str, body: bytes) -> str:
    """The ``sha256=<hex>`` HMAC-SHA256 of ``body`` (GitHub's ``X-Hub-Signature-256``)."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signature_base(timestamp: str | int, body: bytes) -> bytes:
    """What ``X-Kpibot-Signature-256`` signs: ``v1:<X-Kpibot-Timestamp>:<raw body>``."""
    return b"v1:" + str(timestamp).encode("ascii") + b":" + body


def sign_delivery(secret: str, body: bytes, timestamp: str | int) -> str:
    """The ``X-Kpibot-Signature-256`` of a delivery sent with ``X-Kpibot-Timestamp: timestamp``."""
    return sign(secret, signature_base(timestamp, body))


def _same(expected: str, given: str) -> bool:
    """Constant-time comparison of a header with what it should be; any text (a header may
    carry non-ASCII bytes) compares without error."""
    return hmac.compare_digest(
        expected.encode("utf-8"), given.strip().encode("utf-8", "surrogatepass")
    )


_NO_SIGNATURE = (
    "bad or missing signature: send X-Kpibot-Timestamp: <unix seconds> and "
    "X-Kpibot-Signature-256: sha256=<HMAC-SHA256 of v1:<timestamp>:<body>>"
)


def _timestamp_problem(raw: str | None, now: float) -> str | None:
    """Why ``X-Kpibot-Timestamp`` is not acceptable, or None."""
    if raw is None or not raw.strip():
        return (
            "missing X-Kpibot-Timestamp: send the unix time in seconds, and the signature "
            "of v1:<timestamp>:<body> in X-Kpibot-Signature-256"
        )
    if not _TIMESTAMP.fullmatch(raw.strip()):
        return "X-Kpibot-Timestamp must be the unix time in seconds"
    if abs(now - int(raw.strip())) > MAX_SKEW:
        return (
            f"stale delivery: X-Kpibot-Timestamp is more than {MAX_SKEW // 60} minutes "
            "away from the server's clock (send the current time; check the sender's clock)"
        )
    return None


def verify(
    secret: str | None,
    headers: Mapping[str, str],
    body: bytes,
    *,
    github: bool,
    now: float | None = None,
) -> str | None:
    """``None`` when the request is authentic, else the reason it is refused.

    Works on the raw body and headers only: nothing is parsed before this says yes.
    ``headers`` have lower-cased names.
    """
    if not secret:
        return "webhooks are disabled: set KPIBOT_WEBHOOK_SECRET on the server"
    if github:
        given = headers.get(GITHUB_SIGNATURE_HEADER)
        if given and _same(sign(secret, body), given):
            return None
        return (
            "bad or missing X-Hub-Signature-256: set the webhook's secret to KPIBOT_WEBHOOK_SECRET"
        )
    now = time.time() if now is None else now
    stamp = headers.get(TIMESTAMP_HEADER)
    given = headers.get(SIGNATURE_HEADER)
    if given:
        if stamp is None or not _TIMESTAMP.fullmatch(stamp.strip()):
            return _timestamp_problem(stamp, now) or _NO_SIGNATURE
        if not _same(sign_delivery(secret, body, stamp.strip()), given):
            return _NO_SIGNATURE
        return _timestamp_problem(stamp, now)
    auth = headers.get("authorization") or ""
    if auth[:7].lower() == "bearer ":
        if not _same(secret, auth[7:]):
            return _NO_SIGNATURE
        # the bearer form signs nothing: its timestamp only bounds when it is taken, and a
        # replay within that window is harmless by the late-delivery rules of the store
        return _timestamp_problem(stamp, now)
    gitlab = headers.get("x-gitlab-token")  # GitLab sends its webhook's secret token as is
    if gitlab and _same(secret, gitlab):
        return None  # GitLab sends no timestamp: the late-delivery rules protect the data
    return _NO_SIGNATURE


# --------------------------------------------------------------------------- body checks


def _json_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise BadRequest("empty body: send a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body is not valid JSON (not UTF-8): send UTF-8 encoded JSON") from None
    try:
        data = json.loads(text, parse_int=_int64)
    except BadRequest:
        raise
    except RecursionError:
        raise BadRequest("body is not valid JSON (nested too deeply)") from None
    except ValueError as exc:
        raise BadRequest(f"body is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    if _UNSTORABLE_ESCAPE.search(text):
        _check_storable(data)
    return data


def _int64(digits: str) -> int:
    """A JSON integer, refused when no database integer column could take it."""
    value = int(digits)
    if not -(2**63) <= value < 2**63:
        raise BadRequest(f"number {digits[:24]}... does not fit in 64 bits")
    return value


def _check_storable(data: Any) -> None:
    """Refuse strings a database cannot store: NUL characters and unpaired surrogates (which
    only JSON escapes produce). Walks without recursion: the JSON may be deeply nested."""
    stack: list[Any] = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise BadRequest(
                    "body has an unpaired surrogate escape (\\ud800-\\udfff): send valid Unicode"
                ) from None
            if "\x00" in item:
                raise BadRequest("body has a NUL character (\\u0000) in a string: remove it")


def _text(
    data: Mapping[str, Any], key: str, *, required: bool = True, limit: int = 255
) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise BadRequest(f"'{key}' is required")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"'{key}' must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise BadRequest(f"'{key}' is longer than {limit} characters")
    return value


def _time(data: Mapping[str, Any], key: str, *, required: bool = False) -> datetime | None:
    raw = _text(data, key, required=required, limit=64)
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"'{key}' is not an ISO 8601 time: {raw!r}") from None
    if parsed.tzinfo is None:
        raise BadRequest(f"'{key}' needs a time zone, e.g. 2026-11-20T09:00:00Z")
    return parsed.astimezone(UTC).replace(tzinfo=None, microsecond=0)


def _sha(data: Mapping[str, Any], key: str, *, required: bool) -> str | None:
    value = _text(data, key, required=required, limit=64)
    if value is not None and not _SHA.fullmatch(value):
        raise BadRequest(f"'{key}' must be a hexadecimal commit SHA (7 to 64 characters)")
    return value.lower() if value else None


def _provider_id(data: Mapping[str, Any], key: str = "id") -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadRequest(f"'{key}' must be a string or a number")
    text = str(value)
    if not _ID.fullmatch(text):
        raise BadRequest(f"'{key}' must be 1 to 100 characters without spaces")
    return text


# --------------------------------------------------------------------------- GitLab

GITLAB_STATUSES = {
    "success": "success",
    "failed": "failure",
    "canceled": "cancelled",
    "running": "in_progress",
    "created": "pending",
    "blocked": "pending",
}


def gitlab_deployment(data: Mapping[str, Any]) -> dict[str, Any]:
    """A GitLab Deployment Hook body in the deployment schema of ``/webhooks/deployments``.

    The deployment id is kept per project (``gitlab-<project id>-<deployment id>``), so each
    status change of one deployment updates the same row. GitLab before 14.3 sends no
    ``deployment_id``: the deployment's job (``deployable_id``, one job per deployment) names
    it then (``gitlab-<project id>-job-<job id>``); a body with neither is refused. The full
    commit SHA comes from ``commit_url`` (else ``short_sha``) and the finish time from
    ``status_changed_at``.
    """
    project = data.get("project")
    if not isinstance(project, Mapping) or not project.get("path_with_namespace"):
        raise BadRequest("GitLab deployment: missing project.path_with_namespace")
    project_id = _provider_id(project, "id")
    if project_id is None:
        raise BadRequest("GitLab deployment: missing project.id")
    deployment = _provider_id(data, "deployment_id")
    job = _provider_id(data, "deployable_id")
    if deployment is not None:
        pid = f"gitlab-{project_id}-{deployment}"
    elif job is not None:
        pid = f"gitlab-{project_id}-job-{job}"
    else:
        raise BadRequest(
            "GitLab deployment: no deployment_id or deployable_id to tell the deployment "
            "apart (GitLab 14.3 and later send deployment_id)"
        )
    status = GITLAB_STATUSES.get(str(data.get("status") or ""))
    if status is None:
        raise BadRequest(f"GitLab deployment: unknown status {data.get('status')!r}")
    url = str(data.get("commit_url") or "")
    sha = url.rsplit("/", 1)[-1] if "/-/commit/" in url else str(data.get("short_sha") or "")
    changed = data.get("status_changed_at")
    finished = None
    if status in FINISHED_STATUSES:
        if not isinstance(changed, str):
            raise BadRequest("GitLab deployment: missing status_changed_at")
        try:
            at = datetime.strptime(changed, "%Y-%m-%d %H:%M:%S %z")
        except ValueError:
            raise BadRequest(f"GitLab deployment: bad status_changed_at {changed!r}") from None
        finished = at.astimezone(UTC).isoformat()
    return {
        "id": pid,
        "repository": str(project["path_with_namespace"]),
        "environment": data.get("environment"),
        "commit_sha": sha,
        "status": status,
        "finished_at": finished,
        "url": data.get("deployable_url"),
    }


# --------------------------------------------------------------------------- prepared writes


class _Writer:
    """The store's deployment and incident upserts (``bot.store.writes.deployment_upsert``,
    ``incident_upsert`` for deliveries, ``invalidate_statement``: the same natural keys,
    values and late-delivery rules as every other write) over bind parameters, compiled once,
    so a redelivery or a late delivery writes nothing and is recognised by the empty result."""

    def __init__(self, dialect: Dialect) -> None:
        dep_columns = (*writes.KEYS["deployments"], *writes.DEPLOYMENT_VALUES)
        inc_columns = (*writes.KEYS["incidents"], *writes.INCIDENT_VALUES)
        deployment = writes.deployment_upsert(
            writes.insert_for(dialect.name, Deployment).values(
                {c: bindparam(c) for c in dep_columns}
            )
        )
        incident = writes.incident_upsert(
            writes.insert_for(dialect.name, Incident).values(
                {c: bindparam(c) for c in inc_columns}
            ),
            snapshot=False,
        )
        invalidate = writes.invalidate_statement(bindparam("rid"), bindparam("since"))
        dep_types = {c.name: c.type for c in Deployment.__table__.columns}
        inc_types = {c.name: c.type for c in Incident.__table__.columns}
        self.deployment = _Prepared(deployment, dialect, dep_types)
        self.incident = _Prepared(incident, dialect, inc_types)
        self.invalidate = _Prepared(
            invalidate, dialect, {"since": dep_types["finished_at"], "rid": dep_types["id"]}
        )


class _Prepared:
    """A statement compiled once to its SQL string (upserts with ON CONFLICT are not in
    SQLAlchemy's compiled cache), run with the column types' bind processing."""

    def __init__(self, stmt: Any, dialect: Dialect, types: Mapping[str, Any]) -> None:
        self.compiled = stmt.compile(dialect=dialect)
        self.sql = self.compiled.string
        self.order = list(self.compiled.positiontup or []) if self.compiled.positional else None
        self.procs = {
            name: proc
            for name, t in types.items()
            if (proc := t.dialect_impl(dialect).bind_processor(dialect)) is not None
        }

    def __call__(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        full = self.compiled.construct_params(dict(params))
        for name, proc in self.procs.items():
            if full.get(name) is not None:
                full[name] = proc(full[name])
        args: Any = tuple(full[n] for n in self.order) if self.order is not None else full
        return conn.exec_driver_sql(self.sql, args)


class _SerialWriter:
    """One thread doing every write, up to ``batch`` jobs per transaction (group commit).

    A job that raises fails the batch: it is rolled back and each of its jobs run again in
    a transaction of its own, so one bad delivery never loses or doubles another's write.
    """

    def __init__(
        self, sessions: sessionmaker[Session], on_rollback: Callable[[], None], batch: int = 64
    ) -> None:
        self.sessions = sessions
        self.on_rollback = on_rollback
        self.batch = batch
        self.jobs: queue.SimpleQueue[tuple[Callable[[Session], Any], Future[Any]]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: Callable[[Session], T]) -> T:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="kpibot-webhook-writer", daemon=True
                    )
                    self._thread.start()
        done: Future[T] = Future()
        self.jobs.put((job, done))
        return done.result()

    def _run(self) -> None:
        while True:
            jobs = [self.jobs.get()]
            while len(jobs) < self.batch:
                try:
                    jobs.append(self.jobs.get_nowait())
                except queue.Empty:
                    break
            try:
                with unit_of_work(self.sessions) as s:
                    results = [job(s) for job, _ in jobs]
            except BaseException:
                self.on_rollback()
                for job, done in jobs:
                    self._alone(job, done)
                continue
            for (_, done), result in zip(jobs, results, strict=True):
                done.set_result(result)

    def _alone(self, job: Callable[[Session], Any], done: Future[Any]) -> None:
        try:
            with unit_of_work(self.sessions) as s:
                result = job(s)
        except BaseException as exc:
            self.on_rollback()
            done.set_exception(exc)
        else:
            done.set_result(result)


# --------------------------------------------------------------------------- the handler


class Webhooks:
    """The three webhook endpoints over one session factory and the team configuration."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: Config,
        secret: str | None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.secret = secret
        self.clock = clock or (lambda: datetime.now(UTC))
        self._repo_ids: dict[str, int] = {}
        self._team_ids: dict[str, int] = {}
        self._prepared: _Writer | None = None
        bind = sessions.kw.get("bind")
        sqlite_db = getattr(getattr(bind, "dialect", None), "name", "") == "sqlite"
        # SQLite has one writer at a time: one thread writes, committing what waits together
        self._writer_thread = _SerialWriter(sessions, self._forget) if sqlite_db else None
        # freshness: when each webhook source last delivered (recorded at most once a minute)
        self._delivered_at: dict[tuple[str, str], datetime] = {}
        self._delivered_lock = threading.Lock()

    def _delivered(self, source: str, scope: str) -> None:
        """An accepted delivery of a webhook source: its data is as of now (METRICS.md,
        Freshness). Recorded at most every ``DELIVERY_RECORD_EVERY``; never fails the
        delivery."""
        now = self.clock()
        key = (source, scope.lower() if source in source_health.REPO_SCOPED else scope)
        with self._delivered_lock:
            last = self._delivered_at.get(key)
            if last is not None and now - last < DELIVERY_RECORD_EVERY:
                return
            self._delivered_at[key] = now
        try:
            source_health.record(self.sessions, source, scope, now)
        except Exception:
            log.exception("could not record the delivery of %s %s", source, scope)
            with self._delivered_lock:
                self._delivered_at.pop(key, None)

    def _forget(self) -> None:
        """After a rolled-back batch, ids read inside it may be of rows that are gone."""
        self._repo_ids.clear()
        self._team_ids.clear()

    def _write(self, job: Callable[[Session], T]) -> T:
        """Run ``job`` in a transaction (on SQLite, in the writer thread's next batch)."""
        if self._writer_thread is not None:
            return self._writer_thread.submit(job)
        with unit_of_work(self.sessions) as s:
            return job(s)

    # configuration lookups ----------------------------------------------------------------

    def teams_of(self, full_name: str) -> list[TeamConfig]:
        lowered = full_name.lower()
        return [t for t in self.config.teams if lowered in (r.lower() for r in t.repos)]

    def _repo_id(self, s: Session, full_name: str) -> int:
        key = full_name.lower()
        rid = self._repo_ids.get(key)
        if rid is None:
            rid = s.scalar(select(Repository.id).where(func.lower(Repository.full_name) == key))
            if rid is None:
                rid = upsert_repository(s, full_name)
                s.flush()
            else:  # only ids read back from the database are remembered
                self._repo_ids[key] = rid
        return rid

    def _team_id(self, s: Session, team: TeamConfig) -> int:
        tid = self._team_ids.get(team.name)
        if tid is None:
            tid = s.scalar(select(Team.id).where(Team.name == team.name))
            if tid is None:
                row = Team(name=team.name, timezone=team.timezone)
                s.add(row)
                s.flush()
                tid = row.id
            else:
                self._team_ids[team.name] = tid
        return tid

    def _writer(self, s: Session) -> _Writer:
        if self._prepared is None:
            self._prepared = _Writer(s.get_bind().dialect)
        return self._prepared

    def _store_deployment(self, s: Session, rid: int, record: DeploymentRecord) -> bool:
        """Upsert a deployment; True when a row was added or changed (then its contents and
        those of the repository's later deployments are marked for ``bot.store.derive``)."""
        w = self._writer(s)
        conn = s.connection()
        row = w.deployment(conn, writes.deployment_row(rid, record)).first()
        if row is None:
            return False
        if record.finished_at is not None:
            w.invalidate(conn, {"rid": rid, "since": record.finished_at})
        return True

    def _deployment_outcome(self, s: Session, rid: int, record: DeploymentRecord) -> str:
        """Upsert a deployment: ``stored`` (added or changed), ``duplicate`` (the same as
        stored) or ``late`` (what is stored is newer: the delivery changed nothing)."""
        if self._store_deployment(s, rid, record):
            return "stored"
        row = writes.deployment_row(rid, record)
        before = _deployment_state(s, rid, row["source"], record.provider_id)
        mine = (
            record.environment,
            record.commit_sha,
            record.status,
            record.started_at,
            record.finished_at,
            record.url,
        )
        return "duplicate" if before == mine else "late"

    def _incident_outcome(self, s: Session, tid: int, record: IncidentRecord) -> str:
        """Upsert an incident: ``stored``, ``duplicate`` or ``late`` (as deployments)."""
        if self._store_incident(s, tid, record):
            return "stored"
        row = s.execute(
            select(Incident.resolved_at).where(
                Incident.team_id == tid,
                Incident.source == record.source,
                Incident.provider_id == record.provider_id,
            )
        ).first()
        return "duplicate" if row is not None and row[0] == record.resolved_at else "late"

    def _store_incident(self, s: Session, tid: int, record: IncidentRecord) -> bool:
        """Upsert an incident; True when a row was added or changed."""
        row = self._writer(s).incident(s.connection(), writes.incident_row(tid, record)).first()
        return row is not None

    # entry points ------------------------------------------------------------------------

    def deployments(self, headers: Mapping[str, str], body: bytes) -> WebhookResult:
        def handle(data: dict[str, Any]) -> WebhookResult:
            if data.get("object_kind") == "deployment":  # GitLab's Deployment Hook
                return self._deployment(gitlab_deployment(data))
            return self._deployment(data)

        return self._guarded(headers, body, github=False, handler=handle)

    def incidents(self, headers: Mapping[str, str], body: bytes) -> WebhookResult:
        return self._guarded(headers, body, github=False, handler=self._incident)

    def github(self, headers: Mapping[str, str], body: bytes) -> WebhookResult:
        def handle(data: dict[str, Any]) -> WebhookResult:
            event = headers.get("x-github-event")
            if not event:
                raise BadRequest("missing X-GitHub-Event header")
            return self._github(event, data)

        return self._guarded(headers, body, github=True, handler=handle)

    def _guarded(
        self,
        headers: Mapping[str, str],
        body: bytes,
        *,
        github: bool,
        handler: Callable[[dict[str, Any]], WebhookResult],
    ) -> WebhookResult:
        headers = {k.lower(): v for k, v in headers.items()}
        reason = verify(self.secret, headers, body, github=github)
        if reason is not None:
            if not self.secret:
                return WebhookResult(503, {"ok": False, "error": reason})
            return _unauthorized(reason)
        try:
            return handler(_json_object(body))
        except BadRequest as exc:
            return _bad(str(exc))
        except GitHubPayloadError as exc:
            return _bad(f"not a GitHub event payload: {exc}")
        except DataError:  # verified, but a value the database's column cannot hold
            return _bad(
                "a value in the body is too long or out of range for kpibot's database: "
                "nothing was stored"
            )

    # deployments -------------------------------------------------------------------------

    def _deployment(self, data: dict[str, Any]) -> WebhookResult:
        repo = _text(data, "repository")
        assert repo is not None
        if not self.teams_of(repo):
            raise BadRequest(
                f"repository '{repo}' is not in any team's repos in kpibot.yml; add it there "
                "or send the repository's owner/name as configured"
            )
        environment = _text(data, "environment", limit=100)
        sha = _sha(data, "commit_sha", required=True)
        status = _text(data, "status", limit=32)
        assert environment is not None and sha is not None and status is not None
        status = status.lower()
        if status not in DEPLOYMENT_STATUSES:
            raise BadRequest(
                f"'status' must be one of {', '.join(DEPLOYMENT_STATUSES)}, not {status!r}"
            )
        started = _time(data, "started_at")
        finished = _time(data, "finished_at", required=status in FINISHED_STATUSES)
        if status not in FINISHED_STATUSES and finished is not None:
            raise BadRequest(f"'finished_at' must be empty while the status is {status}")
        if started and finished and finished < started:
            raise BadRequest("'finished_at' is before 'started_at'")
        url = _text(data, "url", required=False, limit=2000)
        pid = _provider_id(data)
        if pid is None:
            key = f"{repo.lower()}|{environment}|{sha}|{started.isoformat() if started else ''}"
            pid = "h" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]
        record = DeploymentRecord(
            source="webhook",
            provider_id=pid,
            environment=environment,
            commit_sha=sha,
            ref=None,
            status=status,
            started_at=started,
            finished_at=finished,
            url=url,
        )
        outcome = self._write(lambda s: self._deployment_outcome(s, self._repo_id(s, repo), record))
        self._delivered("deployments-webhook", repo)
        if outcome == "late":
            return _ok(ignored=LATE_DEPLOYMENT, id=pid)
        return _ok(stored="deployment", id=pid, duplicate=outcome == "duplicate")

    # incidents ---------------------------------------------------------------------------

    def _incident(self, data: dict[str, Any]) -> WebhookResult:
        pid = _provider_id(data)
        if pid is None:
            raise BadRequest("'id' is required (the incident's id in your tool)")
        team = self._incident_team(data)
        started = _time(data, "started_at", required=True)
        resolved = _time(data, "resolved_at")
        assert started is not None
        if resolved is not None and resolved < started:
            raise BadRequest("'resolved_at' is before 'started_at'")
        reopened = _time(data, "reopened_at")
        if reopened is not None:
            if reopened < started:
                raise BadRequest("'reopened_at' is before 'started_at'")
            if resolved is not None and resolved <= reopened:
                raise BadRequest(
                    "'resolved_at' is not after 'reopened_at': send 'resolved_at' empty while "
                    "the reopened incident is open"
                )
        title = _text(data, "title", required=False, limit=1000) or pid
        url = _text(data, "url", required=False, limit=2000)
        sha = _sha(data, "commit_sha", required=False)
        dep_ref = _provider_id(data, "deployment_id")

        def job(s: Session) -> str:
            tid = self._team_id(s, team)
            dep_id = None
            if dep_ref is not None:
                dep_id = self._deployment_id(s, team, dep_ref)
            return self._incident_outcome(
                s,
                tid,
                IncidentRecord(
                    source="webhook",
                    provider_id=pid,
                    title=title,
                    started_at=started,
                    resolved_at=resolved,
                    url=url,
                    deployment_id=dep_id,
                    commit_sha=sha,
                    reopened_at=reopened,
                ),
            )

        outcome = self._write(job)
        self._delivered("incidents-webhook", team.name)
        if outcome == "late":
            return _ok(ignored=LATE_INCIDENT, id=pid, team=team.name)
        return _ok(stored="incident", id=pid, team=team.name, duplicate=outcome == "duplicate")

    def _incident_team(self, data: Mapping[str, Any]) -> TeamConfig:
        name = _text(data, "team", required=False, limit=100)
        if name is not None:
            for t in self.config.teams:
                if t.name.lower() == name.lower():
                    return t
            known = ", ".join(self.config.team_names()) or "(none)"
            raise BadRequest(f"unknown team '{name}'; teams in kpibot.yml: {known}")
        repo = _text(data, "repository", required=False)
        if repo is None:
            raise BadRequest("say whose incident it is: 'team' (a team name) or 'repository'")
        teams = self.teams_of(repo)
        if not teams:
            raise BadRequest(f"repository '{repo}' is not in any team's repos in kpibot.yml")
        if len(teams) > 1:
            names = ", ".join(t.name for t in teams)
            raise BadRequest(f"repository '{repo}' belongs to several teams ({names}): send 'team'")
        return teams[0]

    def _deployment_id(self, s: Session, team: TeamConfig, ref: str) -> int:
        repo_ids = [self._repo_id(s, r) for r in team.repos]
        dep = s.scalar(
            select(Deployment.id)
            .where(Deployment.repository_id.in_(repo_ids), Deployment.provider_id == ref)
            .order_by(Deployment.id)
            .limit(1)
        )
        if dep is None:
            raise BadRequest(
                f"no deployment '{ref}' of team '{team.name}' is known yet: send it to "
                "/webhooks/deployments first, or link the incident by 'commit_sha'"
            )
        return dep

    # GitHub ------------------------------------------------------------------------------

    def _github(self, event: str, data: dict[str, Any]) -> WebhookResult:
        if event == "ping":
            return _ok(event="ping")
        if event not in GITHUB_EVENTS:
            return _ok(ignored=f"event '{event}' is not used by kpibot")
        repo_obj = data.get("repository")
        if not isinstance(repo_obj, Mapping) or not isinstance(repo_obj.get("full_name"), str):
            raise BadRequest("payload has no repository.full_name")
        full_name = str(repo_obj["full_name"])
        if event == "issues":  # incident repositories need not be a team's code repositories
            result = self._gh_issue(full_name, data)
        else:
            teams = self.teams_of(full_name)
            if not teams:
                return _ok(ignored=f"repository '{full_name}' is not in kpibot.yml")
            match event:
                case "pull_request":
                    result = self._gh_pull_request(full_name, data)
                case "pull_request_review":
                    result = self._gh_review(full_name, data)
                case "deployment_status":
                    result = self._gh_deployment_status(full_name, teams, data)
                case _:
                    result = self._gh_workflow_run(full_name, teams, data)
        if result.status == 200 and (self.teams_of(full_name) or "stored" in result.body):
            self._delivered("github-webhooks", full_name)
        return result

    def _gh_pull_request(self, full_name: str, data: Mapping[str, Any]) -> WebhookResult:
        parsed = parse_rest_pull(data.get("pull_request"))
        # the store keeps the earliest ready-for-review time, first commit and draft history
        ready_at = rules.ready_for_review_at(_text_or_none(data.get("action")), parsed.updated_at)
        record = replace(parsed, ready_at=ready_at, was_draft=parsed.was_draft or bool(ready_at))

        selecting = population.teams_of_repository(self.config, full_name)

        def job(s: Session) -> int:
            pr_id = upsert_pull_request(s, self._repo_id(s, full_name), record)
            if selecting:  # its files come with the next sync, which selects it again
                population.refresh(s, selecting, pr_ids=[pr_id])
            return record.number

        number = self._write(job)
        self._check_agreements(full_name)
        return _ok(stored="pull_request", number=number)

    def _check_agreements(self, full_name: str) -> None:
        """A PR changed: check the working agreements of the teams counting its repository
        (the scheduler announces what is new). A failed check never fails the delivery."""
        if not any(t.agreements.any for t in self.teams_of(full_name)):
            return
        from bot.reports.agreements import check_repository

        now = self.clock().astimezone(UTC).replace(tzinfo=None, microsecond=0)
        try:
            self._write(lambda s: check_repository(s, self.config.teams, full_name, now))
        except Exception:
            log.exception("checking the working agreements after a webhook for %s", full_name)

    def _gh_review(self, full_name: str, data: Mapping[str, Any]) -> WebhookResult:
        review = parse_rest_review(data.get("review"))
        pr_obj = data.get("pull_request")
        number = pr_obj.get("number") if isinstance(pr_obj, Mapping) else None
        if not isinstance(number, int) or isinstance(number, bool):
            raise BadRequest("payload has no pull_request.number")
        assert isinstance(pr_obj, Mapping)

        def job(s: Session) -> None:
            rid = self._repo_id(s, full_name)
            pr_id = s.scalar(
                select(PullRequest.id).where(
                    PullRequest.repository_id == rid, PullRequest.number == number
                )
            )
            if pr_id is None:  # first seen through its review: store what the event has
                pr_id = upsert_pull_request(s, rid, parse_rest_pull(pr_obj))
                selecting = population.teams_of_repository(self.config, full_name)
                if selecting:
                    population.refresh(s, selecting, pr_ids=[pr_id])
            upsert_reviews(s, pr_id, [review])

        self._write(job)
        self._check_agreements(full_name)
        return _ok(stored="review", id=review.provider_id)

    def _gh_deployment_status(
        self, full_name: str, teams: list[TeamConfig], data: Mapping[str, Any]
    ) -> WebhookResult:
        status = data.get("deployment_status")
        if not isinstance(status, Mapping):
            raise BadRequest("payload has no deployment_status")
        if str(status.get("state", "")).lower() == "inactive":
            return _ok(ignored="inactive statuses do not change a deployment's outcome")
        record = parse_deployment(data.get("deployment"), [status])
        if not any(rules.counts_github_deployment(t, record.environment) for t in teams):
            return _ok(
                ignored=f"deployments to '{record.environment}' are not a team's production "
                "deployments from GitHub in kpibot.yml"
            )

        def job(s: Session) -> str:
            return self._deployment_outcome(s, self._repo_id(s, full_name), record)

        if self._write(job) != "stored":
            return _ok(ignored=UNCHANGED)
        return _ok(stored="deployment", id=record.provider_id, status=record.status)

    def _gh_workflow_run(
        self, full_name: str, teams: list[TeamConfig], data: Mapping[str, Any]
    ) -> WebhookResult:
        run = data.get("workflow_run")
        if not isinstance(run, Mapping):
            raise BadRequest("payload has no workflow_run")
        path = _text_or_none(run.get("path"))
        name = _text_or_none(run.get("name"))
        branch = _text_or_none(run.get("head_branch"))
        deploying = rules.deployment_teams(teams, path=path, name=name, branch=branch)
        if not deploying:
            return _ok(
                ignored=f"workflow '{name or path}' on '{branch}' is not a deployment workflow "
                "in kpibot.yml"
            )
        record = parse_workflow_run(run, environment=rules.deployment_environment(deploying[0]))

        def job(s: Session) -> str:
            return self._deployment_outcome(s, self._repo_id(s, full_name), record)

        if self._write(job) != "stored":
            return _ok(ignored=UNCHANGED)
        return _ok(stored="deployment", id=record.provider_id, status=record.status)

    def _gh_issue(self, full_name: str, data: Mapping[str, Any]) -> WebhookResult:
        issue = parse_rest_issue(data.get("issue"))
        if issue.is_pull_request:
            return _ok(ignored="pull requests are not incidents")
        teams = rules.incident_teams(self.config.teams, full_name, issue.labels)
        if not teams:
            if not self.teams_of(full_name) and not any(
                full_name.lower() in (r.lower() for r in rules.issue_repositories(t))
                for t in self.config.teams
            ):
                return _ok(ignored=f"repository '{full_name}' is not in kpibot.yml")
            return _ok(ignored="the issue has none of the teams' incident labels")
        # GitHub may deliver an older event (opened, labeled, edited) after the close: only a
        # reopen, at the issue's update time, takes a stored resolution away (the rule of
        # bot.ingest.rules.incident_resolution, applied by the upsert)
        reopened_at = issue.updated_at if data.get("action") == "reopened" else None
        for team in teams:  # every team counting it

            def job(s: Session, t: TeamConfig = team) -> bool:
                record = links.issue_incident(s, t, full_name, issue, reopened_at=reopened_at)
                return self._store_incident(s, self._team_id(s, t), record)

            self._write(job)
        names = [t.name for t in teams]
        pid = rules.incident_provider_id(full_name, issue.number)
        return _ok(stored="incident", id=pid, team=names[0], teams=names)


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _deployment_state(s: Session, rid: int, source: str, pid: str) -> tuple[Any, ...] | None:
    row = s.execute(
        select(
            Deployment.environment,
            Deployment.commit_sha,
            Deployment.status,
            Deployment.started_at,
            Deployment.finished_at,
            Deployment.url,
        ).where(
            Deployment.repository_id == rid,
            Deployment.source == source,
            Deployment.provider_id == pid,
        )
    ).first()
    return tuple(row) if row is not None else None


# --------------------------------------------------------------------------- mounting


GITHUB_MAX_BODY = 25 * 1024 * 1024


def install(app: HttpApp, hooks: Webhooks) -> None:
    """Mount ``/webhooks/deployments``, ``/webhooks/incidents`` and ``/webhooks/github``."""
    from bot.surfaces.http import HttpRequest, HttpResponse

    def route(fn: Callable[[Mapping[str, str], bytes], WebhookResult]) -> Any:
        def handler(req: HttpRequest) -> HttpResponse:
            result = fn(req.headers, req.body)
            if result.status >= 400:  # one line: the reason may quote the sender's text
                reason = str(result.body["error"]).encode("unicode_escape").decode("ascii")
                log.info("webhook %s refused (%s): %s", req.path, result.status, reason)
            return HttpResponse.json(result.body, status=result.status)

        return handler

    app.add_route("POST", "/webhooks/deployments", route(hooks.deployments))
    app.add_route("POST", "/webhooks/incidents", route(hooks.incidents))
    # GitHub caps a delivery at 25 MB; a big pull_request payload must not be refused
    app.add_route("POST", "/webhooks/github", route(hooks.github), max_body=GITHUB_MAX_BODY)
