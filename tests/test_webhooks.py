"""Webhooks over real HTTP (the HTTP-mode app on loopback): signatures, schema errors,
idempotent redeliveries, and GitHub events from the recorded octokit examples."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.settings import Config, TeamConfig
from bot.store.models import Deployment, Incident, PullRequest, Review
from bot.store.session import session_factory
from bot.store.teams import sync_teams
from bot.surfaces.http import HttpApp, Server
from bot.surfaces.webhooks import Webhooks, install, sign, sign_delivery
from tests.conftest import fixtures_dir
from tests.helpers import team_id

SECRET = "whsec-test-1234"
TEAMS = (
    TeamConfig(
        name="payments",
        repos=("acme/api", "Codertocat/Hello-World", "root/test-deployment-webhooks"),
        incidents={"source": "github-issues", "labels": ["bug", "incident"]},
    ),
    TeamConfig(
        name="octo",
        repos=("octo-org/octo-repo",),
        deployments={"source": "workflow", "workflow": "test.yml"},
    ),
)
CONFIG = Config(TEAMS)

DEPLOY = {
    "id": "deploy-4711",
    "repository": "acme/api",
    "environment": "production",
    "commit_sha": "9fceb02d0ae598e95dc970b74767f19372d61af8",
    "status": "success",
    "started_at": "2026-11-20T09:00:00Z",
    "finished_at": "2026-11-20T09:04:00+00:00",
    "url": "https://ci.example.com/runs/4711",
}
INCIDENT = {
    "id": "INC-42",
    "team": "payments",
    "title": "Checkout errors",
    "started_at": "2026-11-20T10:00:00Z",
    "resolved_at": "2026-11-20T10:45:00Z",
    "deployment_id": "deploy-4711",
}


@pytest.fixture
def server(engine, session) -> Iterator[str]:
    sync_teams(session, CONFIG)
    session.commit()
    app = HttpApp()
    install(app, Webhooks(session_factory(engine), CONFIG, SECRET))
    with Server(app, host="127.0.0.1", port=0, threads=8) as srv:
        yield srv.url


def signed(body: bytes, secret: str = SECRET, ts: int | None = None) -> dict[str, str]:
    """The headers of a delivery signed now (or at ``ts``)."""
    stamp = int(time.time()) if ts is None else ts
    return {
        "X-Kpibot-Timestamp": str(stamp),
        "X-Kpibot-Signature-256": sign_delivery(secret, body, stamp),
    }


def post(
    url: str, path: str, payload: Any, *, secret: str | None = SECRET, **headers: Any
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    h = {"Content-Type": "application/json", **headers}
    if secret is not None:
        h = {**signed(body, secret), **h}
    return httpx.post(url + path, content=body, headers=h)


def count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


# --------------------------------------------------------------------------- deployments


def test_deployment_stored_once_and_redelivery_changes_nothing(server, session):
    r = post(server, "/webhooks/deployments", DEPLOY)
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "stored": "deployment", "id": "deploy-4711", "duplicate": False}
    again = post(server, "/webhooks/deployments", DEPLOY)
    assert again.json()["duplicate"] is True
    assert count(session, Deployment) == 1
    d = session.scalars(select(Deployment)).one()
    assert (d.source, d.status, d.environment) == ("webhook", "success", "production")
    assert d.finished_at.isoformat() == "2026-11-20T09:04:00"
    # a later update of the same deployment id changes that row
    failed = {**DEPLOY, "status": "failure", "finished_at": "2026-11-20T09:06:00Z"}
    assert post(server, "/webhooks/deployments", failed).json()["duplicate"] is False
    assert count(session, Deployment) == 1
    assert session.scalars(select(Deployment.status)).one() == "failure"


def test_deployment_without_id_is_keyed_by_its_content(server, session):
    body = {k: v for k, v in DEPLOY.items() if k != "id"}
    first = post(server, "/webhooks/deployments", body).json()
    second = post(server, "/webhooks/deployments", body).json()
    assert first["id"] == second["id"] and second["duplicate"] is True
    assert count(session, Deployment) == 1


def test_bearer_token_is_accepted_with_a_current_timestamp(server, session):
    body = json.dumps(DEPLOY).encode()
    headers = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}
    r = httpx.post(server + "/webhooks/deployments", content=body, headers=headers)
    assert r.status_code == 401 and "X-Kpibot-Timestamp" in r.json()["error"]
    stale = {**headers, "X-Kpibot-Timestamp": str(int(time.time()) - 400)}
    r = httpx.post(server + "/webhooks/deployments", content=body, headers=stale)
    assert r.status_code == 401 and "stale" in r.json()["error"]
    assert count(session, Deployment) == 0
    now = {**headers, "X-Kpibot-Timestamp": str(int(time.time()))}
    r = httpx.post(server + "/webhooks/deployments", content=body, headers=now)
    assert r.status_code == 200
    assert count(session, Deployment) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Kpibot-Signature-256": "sha256=" + "0" * 64},
        {"X-Kpibot-Signature-256": sign("other-secret", json.dumps(DEPLOY).encode())},
        {"Authorization": "Bearer wrong"},
        signed(json.dumps(DEPLOY).encode(), "other-secret"),
        # the body alone signed, without the timestamp
        {"X-Kpibot-Signature-256": sign(SECRET, json.dumps(DEPLOY).encode())},
        {
            "X-Kpibot-Timestamp": "1700000000",
            "X-Kpibot-Signature-256": sign(SECRET, json.dumps(DEPLOY).encode()),
        },
    ],
)
def test_bad_signatures_are_401_and_store_nothing(server, session, headers):
    r = post(server, "/webhooks/deployments", DEPLOY, secret=None, **headers)
    assert r.status_code == 401
    assert r.json()["ok"] is False and "signature" in r.json()["error"]
    assert SECRET not in r.text
    assert count(session, Deployment) == 0


def test_signature_covers_the_exact_body(server, session):
    body = json.dumps(DEPLOY).encode()
    tampered = body.replace(b"success", b"failure")
    r = post(server, "/webhooks/deployments", tampered, secret=None, **signed(body))
    assert r.status_code == 401
    assert count(session, Deployment) == 0


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty body"),
        (b"[1, 2]", "JSON object"),
        ({**DEPLOY, "repository": None}, "'repository' is required"),
        ({**DEPLOY, "repository": "acme/unknown"}, "not in any team's repos"),
        ({**DEPLOY, "commit_sha": "not-a-sha"}, "hexadecimal commit SHA"),
        ({**DEPLOY, "status": "done"}, "'status' must be one of"),
        ({**DEPLOY, "finished_at": None}, "'finished_at' is required"),
        ({**DEPLOY, "finished_at": "2026-11-20 09:04"}, "needs a time zone"),
        ({**DEPLOY, "finished_at": "yesterday"}, "not an ISO 8601 time"),
        ({**DEPLOY, "finished_at": "2026-11-20T08:00:00Z"}, "before 'started_at'"),
        ({**DEPLOY, "status": "in_progress"}, "must be empty while the status is in_progress"),
        ({**DEPLOY, "id": "has space"}, "without spaces"),
        ({**DEPLOY, "environment": 5}, "'environment' must be a string"),
    ],
)
def test_malformed_deployments_are_400_with_the_reason(server, session, payload, reason):
    r = post(server, "/webhooks/deployments", payload)
    assert r.status_code == 400
    assert reason in r.json()["error"]
    assert count(session, Deployment) == 0


# --------------------------------------------------------------------------- incidents


def test_incident_linked_to_a_deployment_and_idempotent(server, session):
    post(server, "/webhooks/deployments", DEPLOY)
    r = post(server, "/webhooks/incidents", INCIDENT)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "ok": True,
        "stored": "incident",
        "id": "INC-42",
        "team": "payments",
        "duplicate": False,
    }
    assert post(server, "/webhooks/incidents", INCIDENT).json()["duplicate"] is True
    assert count(session, Incident) == 1
    inc = session.scalars(select(Incident)).one()
    dep = session.scalars(select(Deployment)).one()
    assert (inc.source, inc.deployment_id, inc.title) == ("webhook", dep.id, "Checkout errors")
    # an open incident, resolved by a later delivery
    opened = {**INCIDENT, "id": "INC-43", "resolved_at": None, "deployment_id": None}
    assert post(server, "/webhooks/incidents", opened).status_code == 200
    closed = {**opened, "resolved_at": "2026-11-21T08:00:00Z"}
    assert post(server, "/webhooks/incidents", closed).json()["duplicate"] is False
    assert count(session, Incident) == 2


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({**INCIDENT, "id": None}, "'id' is required"),
        ({**INCIDENT, "team": "nobody"}, "unknown team 'nobody'"),
        ({k: v for k, v in INCIDENT.items() if k != "team"}, "'team' (a team name) or"),
        ({**INCIDENT, "started_at": None}, "'started_at' is required"),
        ({**INCIDENT, "resolved_at": "2026-11-20T09:00:00Z"}, "before 'started_at'"),
        ({**INCIDENT, "deployment_id": "never-sent"}, "no deployment 'never-sent'"),
        ({**INCIDENT, "commit_sha": "xyz"}, "hexadecimal"),
    ],
)
def test_malformed_incidents_are_400(server, session, payload, reason):
    r = post(server, "/webhooks/incidents", payload)
    assert r.status_code == 400
    assert reason in r.json()["error"]
    assert count(session, Incident) == 0


def test_incident_by_repository_and_commit(server, session):
    body = {
        "id": 77,
        "repository": "acme/api",
        "started_at": "2026-11-20T10:00:00Z",
        "commit_sha": "9FCEB02",
    }
    r = post(server, "/webhooks/incidents", body)
    assert r.status_code == 200 and r.json()["team"] == "payments"
    inc = session.scalars(select(Incident)).one()
    assert (inc.provider_id, inc.commit_sha, inc.title) == ("77", "9fceb02", "77")


def test_disabled_without_a_secret(engine, session):
    app = HttpApp()
    install(app, Webhooks(session_factory(engine), CONFIG, None))
    with Server(app, host="127.0.0.1", port=0) as srv:
        r = post(srv.url, "/webhooks/incidents", INCIDENT)
    assert r.status_code == 503 and "KPIBOT_WEBHOOK_SECRET" in r.json()["error"]


# --------------------------------------------------------------------------- GitHub


def octokit(path: str) -> bytes:
    return (
        fixtures_dir() / "octokit-webhooks" / "payload-examples" / "api.github.com" / path
    ).read_bytes()


def gh(url: str, event: str, body: bytes, *, secret: str = SECRET) -> httpx.Response:
    return httpx.post(
        url + "/webhooks/github",
        content=body,
        headers={
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "X-Hub-Signature-256": sign(secret, body),
            "Content-Type": "application/json",
        },
    )


def test_github_pull_request_and_reviews(server, session):
    for name in ("opened", "ready_for_review", "closed"):
        r = gh(server, "pull_request", octokit(f"pull_request/{name}.payload.json"))
        assert r.status_code == 200 and r.json()["stored"] == "pull_request", r.text
    for _ in range(2):  # a redelivery
        r = gh(server, "pull_request_review", octokit("pull_request_review/submitted.payload.json"))
        assert r.json() == {"ok": True, "stored": "review", "id": "237895671"}
    assert count(session, PullRequest) == 1 and count(session, Review) == 1
    pr = session.scalars(select(PullRequest)).one()
    # closed without merging; ready_for_review set the ready time and keeps it
    assert (pr.number, pr.state, pr.additions) == (2, "closed", 1)
    assert pr.ready_at is not None and pr.ready_at.isoformat() == "2019-05-15T15:21:18"
    r = gh(server, "pull_request_review", octokit("pull_request_review/dismissed.payload.json"))
    assert r.status_code == 200
    review = session.scalars(select(Review)).one()
    assert (review.state, review.dismissed) == ("DISMISSED", True)


def _pr_event(name: str, **changes: Any) -> bytes:
    """An octokit ``pull_request`` example with its pull request's fields changed."""
    body = json.loads(octokit(f"pull_request/{name}.payload.json"))
    body["pull_request"].update(changes)
    return json.dumps(body).encode()


MERGED = {
    "state": "closed",
    "merged": True,
    "merged_at": "2019-05-15T16:00:00Z",
    "closed_at": "2019-05-15T16:00:00Z",
    "updated_at": "2019-05-15T16:00:00Z",
    "merge_commit_sha": "c4295bd74fb0f4fda03689c3df3f2803b658fd85",
    "title": "Merged title",
}


def _pr(session) -> PullRequest:
    session.expire_all()
    return session.scalars(select(PullRequest)).one()


def test_late_pull_request_events_never_unmerge_or_reopen(server, session):
    """GitHub delivers events out of order and redelivers old ones: an older payload stored
    after a newer one changes nothing but what no payload takes away (the earliest
    ready-for-review time); one of the same second never moves the PR back."""
    assert gh(server, "pull_request", _pr_event("closed", **MERGED)).json()["stored"]
    merged = _pr(session)
    assert (merged.state, merged.merged_at.isoformat()) == ("merged", "2019-05-15T16:00:00")
    # an older "synchronize" (open, no merge, 15:20:33) and "ready_for_review" (15:21:18)
    for late in ("synchronize", "ready_for_review"):
        r = gh(server, "pull_request", octokit(f"pull_request/{late}.payload.json"))
        assert r.status_code == 200, r.text
    pr = _pr(session)
    assert (pr.state, pr.title, pr.merge_commit_sha) == (
        "merged",
        "Merged title",
        MERGED["merge_commit_sha"],
    )
    assert (pr.merged_at.isoformat(), pr.updated_at.isoformat()) == (
        "2019-05-15T16:00:00",
        "2019-05-15T16:00:00",
    )
    assert pr.ready_at is not None and pr.ready_at.isoformat() == "2019-05-15T15:21:18"
    # a label added in the second of the merge, delivered after it: still merged
    same_second = _pr_event("labeled", updated_at=MERGED["updated_at"], title="Labelled")
    gh(server, "pull_request", same_second)
    assert (_pr(session).state, _pr(session).merged_at) == ("merged", merged.merged_at)
    # a newer payload still changes what it may (a retitle after the merge)
    gh(
        server,
        "pull_request",
        _pr_event(
            "closed", **{**MERGED, "title": "Retitled", "updated_at": "2019-05-16T08:00:00Z"}
        ),
    )
    pr = _pr(session)
    assert (pr.state, pr.title, pr.merged_at) == ("merged", "Retitled", merged.merged_at)


def test_a_pull_request_reopened_later_is_open_again_but_not_by_an_older_open(server, session):
    closed = {
        "state": "closed",
        "closed_at": "2019-05-15T16:00:00Z",
        "updated_at": "2019-05-15T16:00:00Z",
    }
    gh(server, "pull_request", _pr_event("closed", **closed))
    gh(server, "pull_request", octokit("pull_request/opened.payload.json"))  # 15:20:33, late
    assert (_pr(session).state, _pr(session).closed_at.isoformat()) == (
        "closed",
        "2019-05-15T16:00:00",
    )
    gh(server, "pull_request", _pr_event("reopened", updated_at="2019-05-15T17:00:00Z"))
    assert (_pr(session).state, _pr(session).closed_at) == ("open", None)
    gh(server, "pull_request", _pr_event("closed", **closed))  # the close, redelivered
    assert _pr(session).state == "open"


def test_a_late_review_event_does_not_undo_its_dismissal(server, session):
    submitted = json.loads(octokit("pull_request_review/submitted.payload.json"))
    submitted["review"]["state"] = "approved"
    submitted["review"]["user"]["login"] = "a-reviewer"  # not the PR's author
    approved = json.dumps(submitted).encode()
    dismissed = octokit("pull_request_review/dismissed.payload.json")
    assert json.loads(dismissed)["review"]["id"] == submitted["review"]["id"]
    gh(server, "pull_request_review", approved)
    assert _pr(session).first_approval_at is not None
    gh(server, "pull_request_review", dismissed)
    gh(server, "pull_request_review", approved)  # the approval, delivered late
    session.expire_all()
    review = session.scalars(select(Review)).one()
    assert (review.state, review.dismissed) == ("DISMISSED", True)
    assert _pr(session).first_approval_at is None


def test_github_review_before_its_pull_request(server, session):
    r = gh(server, "pull_request_review", octokit("pull_request_review/submitted.payload.json"))
    assert r.status_code == 200
    assert count(session, PullRequest) == 1 and count(session, Review) == 1


def test_github_deployment_status(server, session):
    body = octokit("deployment_status/payload.json")
    assert gh(server, "deployment_status", body).json()["status"] == "success"
    assert gh(server, "deployment_status", body).status_code == 200
    assert count(session, Deployment) == 1
    d = session.scalars(select(Deployment)).one()
    assert (d.source, d.provider_id, d.status) == ("github-deployments", "145988746", "success")
    assert d.finished_at.isoformat() == "2019-05-15T15:20:55"
    # a late "in_progress" for the same deployment does not undo its outcome
    late = json.loads(body)
    late["deployment_status"]["state"] = "in_progress"
    late["deployment_status"]["created_at"] = "2019-05-15T15:20:50Z"
    r = gh(server, "deployment_status", json.dumps(late).encode())
    assert "ignored" in r.json()
    session.expire_all()
    assert session.scalars(select(Deployment.status)).one() == "success"


def test_github_workflow_run_of_the_deployment_workflow(server, session):
    requested = gh(server, "workflow_run", octokit("workflow_run/requested.payload.json"))
    assert requested.json()["status"] == "queued"
    done = gh(server, "workflow_run", octokit("workflow_run/completed.payload.json"))
    assert done.json()["status"] == "success"
    # redelivery of the earlier event changes nothing
    assert (
        "ignored"
        in gh(server, "workflow_run", octokit("workflow_run/requested.payload.json")).json()
    )
    d = session.scalars(select(Deployment)).one()
    assert (d.source, d.status, d.environment) == ("workflow", "success", "production")


def test_github_issues_become_incidents(server, session):
    for name in ("opened", "labeled"):
        r = gh(server, "issues", octokit(f"issues/{name}.payload.json"))
        assert r.json()["stored"] == "incident"
    inc = session.scalars(select(Incident)).one()
    assert (inc.source, inc.provider_id) == ("github-issues", "codertocat/hello-world#1")
    assert inc.resolved_at is None


def test_github_signature_unknown_repos_and_events(server, session):
    body = octokit("pull_request/opened.payload.json")
    r = gh(server, "pull_request", body, secret="not-it")
    assert r.status_code == 401 and "X-Hub-Signature-256" in r.json()["error"]
    r = httpx.post(
        server + "/webhooks/github",
        content=body,
        headers={"X-Hub-Signature-256": sign(SECRET, body)},
    )
    assert r.status_code == 400 and "X-GitHub-Event" in r.json()["error"]
    assert gh(server, "ping", b'{"zen": "Keep it logically awesome."}').json()["event"] == "ping"
    assert "ignored" in gh(server, "push", octokit("push/payload.json")).json()
    other = json.loads(body)
    other["repository"]["full_name"] = "someone/else"
    assert "ignored" in gh(server, "pull_request", json.dumps(other).encode()).json()
    broken = json.loads(body)
    del broken["pull_request"]["created_at"]
    r = gh(server, "pull_request", json.dumps(broken).encode())
    assert r.status_code == 400 and "created_at" in r.json()["error"]
    assert count(session, PullRequest) == 0


def test_concurrent_deliveries_are_stored_exactly_once(server, session):
    """8 clients at once, every event twice, some incidents naming unknown deployments: the
    good ones are all stored once, the bad ones refused without taking others down."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    bodies: list[tuple[str, dict]] = []
    for i in range(60):
        bodies.append(
            ("/webhooks/deployments", {**DEPLOY, "id": f"c{i}", "commit_sha": f"{i:07x}"})
        )
    for i in range(30):
        ref = f"c{i}" if i % 5 else f"missing-{i}"
        bodies.append(("/webhooks/incidents", {**INCIDENT, "id": f"I{i}", "deployment_id": ref}))
    deliveries = bodies + bodies

    local = threading.local()
    clients: list[httpx.Client] = []

    def send(item: tuple[str, dict]) -> tuple[str, int, bool]:
        if not hasattr(local, "client"):
            local.client = httpx.Client()
            clients.append(local.client)
        path, payload = item
        body = json.dumps(payload).encode()
        r = local.client.post(server + path, content=body, headers=signed(body))
        return payload["id"], r.status_code, bool(r.json().get("duplicate"))

    deploys = [d for d in deliveries if d[0].endswith("deployments")]
    incidents = [d for d in deliveries if d[0].endswith("incidents")]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, deploys)) + list(pool.map(send, incidents))
    for c in clients:
        c.close()
    assert sum(1 for _, code, _ in results if code == 400) == 12  # 6 unknown refs, twice
    bad = {f"I{i}" for i in range(0, 30, 5)}
    assert all((code == 400) == (pid in bad) for pid, code, _ in results)
    assert sum(1 for *_, dup in results if dup) == 60 + 24
    assert count(session, Deployment) == 60
    assert count(session, Incident) == 24
    linked = session.scalar(select(func.count()).where(Incident.deployment_id.is_not(None)))
    assert linked == 24


# --------------------------------------------------------------------------- GitLab


def gitlab_fixture() -> bytes:
    return (fixtures_dir() / "go-gitlab" / "testdata" / "webhooks" / "deployment.json").read_bytes()


def test_gitlab_deployment_hook_parser():
    from bot.surfaces.webhooks import gitlab_deployment

    d = gitlab_deployment(json.loads(gitlab_fixture()))
    assert d == {
        "id": "gitlab-30-15",
        "repository": "root/test-deployment-webhooks",
        "environment": "staging",
        "commit_sha": "279484c09fbe69ededfced8c1bb6e6d24616b468",
        "status": "success",
        "finished_at": "2021-04-28T19:50:00+00:00",  # 21:50 +0200
        "url": "http://10.126.0.2:3000/root/test-deployment-webhooks/-/jobs/796",
    }


def test_gitlab_deployment_hook_with_its_token(server, session):
    body = gitlab_fixture()
    running = json.loads(body)
    running["status"] = "running"
    headers = {"X-Gitlab-Event": "Deployment Hook", "Content-Type": "application/json"}
    r = httpx.post(server + "/webhooks/deployments", content=json.dumps(running).encode(),
                   headers={**headers, "X-Gitlab-Token": SECRET})  # fmt: skip
    assert r.status_code == 200, r.text
    for _ in range(2):
        r = httpx.post(server + "/webhooks/deployments", content=body,
                       headers={**headers, "X-Gitlab-Token": SECRET})  # fmt: skip
        assert r.status_code == 200
    assert r.json()["duplicate"] is True
    d = session.scalars(select(Deployment)).one()
    assert (d.provider_id, d.status, d.environment) == ("gitlab-30-15", "success", "staging")
    assert d.finished_at.isoformat() == "2021-04-28T19:50:00"
    r = httpx.post(server + "/webhooks/deployments", content=body,
                   headers={**headers, "X-Gitlab-Token": "not-the-token"})  # fmt: skip
    assert r.status_code == 401
    broken = json.loads(body)
    broken["status"] = "exploded"
    r = httpx.post(server + "/webhooks/deployments", content=json.dumps(broken).encode(),
                   headers={**headers, "X-Gitlab-Token": SECRET})  # fmt: skip
    assert r.status_code == 400 and "unknown status 'exploded'" in r.json()["error"]


def test_github_issue_naming_a_deployment_links_it(server, session):
    gh(server, "deployment_status", octokit("deployment_status/payload.json"))
    issue = json.loads(octokit("issues/opened.payload.json"))
    issue["issue"]["body"] = (
        "Broke after https://github.com/Codertocat/Hello-World/deployments/145988746"
    )
    r = gh(server, "issues", json.dumps(issue).encode())
    assert r.json()["stored"] == "incident"
    inc = session.scalars(select(Incident)).one()
    dep = session.scalars(select(Deployment)).one()
    assert inc.deployment_id == dep.id


def test_github_deliveries_over_a_mebibyte_are_taken(server, session):
    """GitHub sends up to 25 MB (a pull request with a huge description); the JSON webhooks
    keep the 1 MiB limit."""
    payload = json.loads(octokit("pull_request/opened.payload.json"))
    payload["pull_request"]["body"] = "x" * (2 * 1024 * 1024)
    r = gh(server, "pull_request", json.dumps(payload).encode())
    assert r.status_code == 200 and r.json()["stored"] == "pull_request", r.text
    assert count(session, PullRequest) == 1
    big = {**DEPLOY, "url": "https://ci.example.com/" + "x" * (1024 * 1024)}
    assert post(server, "/webhooks/deployments", big).status_code == 413


def test_github_issue_of_a_shared_repository_is_an_incident_of_each_team(engine, session):
    shared = Config(
        (
            TEAMS[0],
            TeamConfig(
                name="web",
                repos=("Codertocat/Hello-World",),
                incidents={"source": "github-issues", "labels": ["bug"]},
            ),
        )
    )
    sync_teams(session, shared)
    session.commit()
    app = HttpApp()
    install(app, Webhooks(session_factory(engine), shared, SECRET))
    with Server(app, host="127.0.0.1", port=0, threads=4) as srv:
        for _ in range(2):  # a redelivery adds nothing
            r = gh(srv.url, "issues", octokit("issues/labeled.payload.json"))
            assert r.status_code == 200 and r.json()["teams"] == ["payments", "web"], r.text
    session.expire_all()
    rows = session.execute(select(Incident.team_id, Incident.provider_id)).all()
    assert len(rows) == 2 and len({t for t, _ in rows}) == 2
    assert {p for _, p in rows} == {"codertocat/hello-world#1"}


def test_github_issue_reopened_is_unresolved_again(server, session):
    """GitHub's reopened payload still carries the last ``closed_at``: the open state wins."""
    opened = json.loads(octokit("issues/opened.payload.json"))
    closed = {**opened, "action": "closed"}
    closed["issue"] = {**opened["issue"], "state": "closed", "closed_at": "2019-05-15T16:00:00Z"}
    assert gh(server, "issues", json.dumps(closed).encode()).json()["stored"] == "incident"
    session.expire_all()
    inc = session.scalars(select(Incident)).one()
    assert inc.resolved_at is not None and inc.resolved_at.isoformat() == "2019-05-15T16:00:00"
    # a late delivery of an earlier event (opened, labeled) keeps the resolution
    for late in ("opened", "labeled"):
        assert gh(server, "issues", octokit(f"issues/{late}.payload.json")).status_code == 200
        session.expire_all()
        assert session.scalars(select(Incident)).one().resolved_at is not None, late
    assert gh(server, "issues", octokit("issues/reopened.payload.json")).status_code == 200
    session.expire_all()
    assert session.scalars(select(Incident)).one().resolved_at is None


# --------------------------------------------------------------------------- hostile input

VALID = json.dumps(DEPLOY).encode()
MALFORMED = {
    "not JSON": b"not json",
    "broken JSON": b"{not json",
    "deeply nested": b"[" * 100_000,
    "deeply nested object": b'{"a":' * 100_000,
    "not UTF-8": b'{"id": "\xff\xfe", "repository": "acme/api"}',
    "unpaired surrogate": VALID.replace(b'"deploy-4711"', b'"deploy-\\ud800"'),
    "NUL character": VALID.replace(b'"production"', b'"prod\\u0000"'),
}
ENDPOINTS = ("/webhooks/deployments", "/webhooks/incidents", "/webhooks/github")


def _refusals(caplog) -> list[logging.LogRecord]:
    """What the server logged: no traceback, no error, one line per refusal."""
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    return [r for r in caplog.records if r.name.startswith("kpibot")]


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_bodies_are_401_unsigned_and_400_signed(server, session, caplog, path, name):
    caplog.set_level(logging.INFO, logger="kpibot")
    body = MALFORMED[name]
    github = {"X-GitHub-Event": "deployment_status"}
    r = post(server, path, body, secret=None, **github)
    assert r.status_code == 401, r.text
    if path.endswith("github"):
        r = post(server, path, body, secret=None, **github,
                 **{"X-Hub-Signature-256": sign(SECRET, body)})  # fmt: skip
    else:
        r = post(server, path, body)
    assert r.status_code == 400, r.text
    assert r.json()["ok"] is False and r.json()["error"]
    logged = _refusals(caplog)
    assert len(logged) == 2 and all("\n" not in r.getMessage() for r in logged)
    assert count(session, Deployment) == 0 and count(session, Incident) == 0


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "header",
    [
        {"X-Kpibot-Signature-256": "sha256=\u00e9t\u00e9".encode()},
        {"X-Kpibot-Signature-256": b"sha256=\xff\xfe"},
        {"X-Kpibot-Timestamp": "\u0661\u0667\u0660\u0660".encode()},  # Arabic-Indic digits
        {"X-Hub-Signature-256": "sha256=\u00e9".encode()},
        {"Authorization": "Bearer \u00e9\u00e9".encode()},
        {"X-Gitlab-Token": "t\u00f6ken".encode()},
    ],
)
def test_non_ascii_signature_headers_are_401(server, session, caplog, path, header):
    caplog.set_level(logging.INFO, logger="kpibot")
    if "X-Kpibot-Timestamp" in header:
        header = {**header, "X-Kpibot-Signature-256": sign(SECRET, VALID)}
    r = post(server, path, VALID, secret=None, **header, **{"X-GitHub-Event": "ping"})
    assert r.status_code == 401, r.text
    assert len(_refusals(caplog)) == 1
    assert count(session, Deployment) == 0


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    # well clear of the 300 s limit: the second the request takes must not decide the case
    ("offset", "status"),
    [(-330, 401), (-270, 200), (270, 200), (330, 401)],
)
def test_deliveries_signed_more_than_five_minutes_away_are_refused(server, session, offset, status):
    ts = int(time.time()) + offset
    r = post(server, "/webhooks/deployments", VALID, secret=None, **signed(VALID, ts=ts))
    assert r.status_code == status, r.text
    if status == 401:
        assert "stale" in r.json()["error"]
    assert count(session, Deployment) == (status == 200)


def test_the_timestamp_is_signed(server, session):
    ts = int(time.time())
    headers = signed(VALID, ts=ts - 1000)
    headers["X-Kpibot-Timestamp"] = str(ts)  # a captured delivery with a fresh timestamp
    r = post(server, "/webhooks/deployments", VALID, secret=None, **headers)
    assert r.status_code == 401 and "signature" in r.json()["error"]
    assert count(session, Deployment) == 0


# --------------------------------------------------------------------------- late deliveries


def _status(session) -> tuple[str, str | None]:
    session.expire_all()
    d = session.scalars(select(Deployment)).one()
    return d.status, d.finished_at.isoformat() if d.finished_at else None


QUEUED = {**DEPLOY, "status": "queued", "finished_at": None}
RUNNING = {**DEPLOY, "status": "in_progress", "finished_at": None}
FAILED = {**DEPLOY, "status": "failure", "finished_at": "2026-11-20T09:10:00Z"}


@pytest.mark.parametrize(
    ("deliveries", "final"),
    [
        # a replayed in_progress does not turn a success back
        ([RUNNING, DEPLOY, RUNNING], ("success", "2026-11-20T09:04:00")),
        ([QUEUED, RUNNING, QUEUED], ("in_progress", None)),
        # an older success does not replace a newer failure, in either order
        ([FAILED, DEPLOY], ("failure", "2026-11-20T09:10:00")),
        ([DEPLOY, FAILED], ("failure", "2026-11-20T09:10:00")),
        ([DEPLOY, FAILED, RUNNING, DEPLOY], ("failure", "2026-11-20T09:10:00")),
        # at the same time, the outcome stored first stays
        ([DEPLOY, {**DEPLOY, "status": "error"}], ("success", "2026-11-20T09:04:00")),
    ],
)
def test_late_deployment_deliveries_never_undo_a_newer_outcome(server, session, deliveries, final):
    answers = [post(server, "/webhooks/deployments", d).json() for d in deliveries]
    assert _status(session) == final
    assert count(session, Deployment) == 1
    assert all(a["ok"] for a in answers)
    if deliveries[-1] is not deliveries[0] and final[0] != deliveries[-1]["status"]:
        assert answers[-1]["ignored"] == "a later outcome of this deployment is already stored"


def test_a_late_delivery_does_not_change_the_deployment_s_other_fields(server, session):
    post(server, "/webhooks/deployments", FAILED)
    late = {**RUNNING, "url": "https://ci.example.com/elsewhere"}
    assert "ignored" in post(server, "/webhooks/deployments", late).json()
    session.expire_all()
    assert session.scalars(select(Deployment.url)).one() == DEPLOY["url"]


def _resolved(session) -> str | None:
    session.expire_all()
    at = session.scalars(select(Incident.resolved_at)).one()
    return at.isoformat() if at else None


OPEN = {**INCIDENT, "resolved_at": None, "deployment_id": None}
RESOLVED = {**OPEN, "resolved_at": "2026-11-20T10:45:00Z"}
REOPENED = {**OPEN, "reopened_at": "2026-11-20T11:00:00Z"}
RESOLVED_AGAIN = {**OPEN, "resolved_at": "2026-11-20T12:00:00Z"}


@pytest.mark.parametrize(
    ("deliveries", "final"),
    [
        # a replayed "open" does not re-open a resolved incident
        ([OPEN, RESOLVED, OPEN], "2026-11-20T10:45:00"),
        # an explicit, later reopen does; an older resolution does not close it again
        ([RESOLVED, REOPENED], None),
        ([RESOLVED, REOPENED, RESOLVED, OPEN], None),
        ([REOPENED, RESOLVED], None),
        # a resolution after the reopen closes it; a late reopen does not undo that
        ([RESOLVED, REOPENED, RESOLVED_AGAIN, REOPENED, RESOLVED], "2026-11-20T12:00:00"),
        ([RESOLVED_AGAIN, RESOLVED], "2026-11-20T12:00:00"),
    ],
)
def test_late_incident_deliveries_never_undo_a_newer_state(server, session, deliveries, final):
    for d in deliveries:
        r = post(server, "/webhooks/incidents", d)
        assert r.status_code == 200, r.text
    assert _resolved(session) == final
    assert count(session, Incident) == 1


def test_late_incident_delivery_is_answered_as_ignored(server, session):
    post(server, "/webhooks/incidents", RESOLVED)
    assert post(server, "/webhooks/incidents", RESOLVED).json()["duplicate"] is True
    late = post(server, "/webhooks/incidents", OPEN).json()
    assert late["ignored"] == "a later state of this incident is already stored"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({**REOPENED, "reopened_at": "2026-11-20T09:00:00Z"}, "'reopened_at' is before"),
        ({**REOPENED, "resolved_at": "2026-11-20T10:30:00Z"}, "not after 'reopened_at'"),
        ({**REOPENED, "reopened_at": "soon"}, "not an ISO 8601 time"),
    ],
)
def test_malformed_reopens_are_400(server, session, payload, reason):
    r = post(server, "/webhooks/incidents", payload)
    assert r.status_code == 400 and reason in r.json()["error"]
    assert count(session, Incident) == 0


def test_github_late_close_does_not_undo_a_later_reopen(server, session):
    """The GitHub webhook keeps the same rule: a reopen wins over an older close only."""
    reopened = json.loads(octokit("issues/reopened.payload.json"))
    reopened["repository"]["full_name"] = "Codertocat/Hello-World"
    reopened["issue"]["labels"] = [{"name": "incident"}]
    closed = {**reopened, "action": "closed"}
    closed["issue"] = {**reopened["issue"], "state": "closed"}  # closed 2021-07-05T18:07:10Z
    assert gh(server, "issues", json.dumps(closed).encode()).json()["stored"] == "incident"
    assert _resolved(session) == "2021-07-05T18:07:10"
    gh(server, "issues", json.dumps(reopened).encode())  # reopened 2021-10-11T16:40:56Z
    assert _resolved(session) is None
    gh(server, "issues", json.dumps(closed).encode())  # the older close, delivered late
    assert _resolved(session) is None
    later = {**closed, "issue": {**closed["issue"], "closed_at": "2021-10-12T08:00:00Z"}}
    gh(server, "issues", json.dumps(later).encode())
    assert _resolved(session) == "2021-10-12T08:00:00"
    gh(server, "issues", json.dumps(reopened).encode())  # the reopen, delivered late
    assert _resolved(session) == "2021-10-12T08:00:00"


def test_github_late_success_does_not_replace_a_newer_failure(server, session):
    body = json.loads(octokit("deployment_status/payload.json"))  # success at 15:20:55
    failed = json.loads(json.dumps(body))
    failed["deployment_status"].update(state="failure", created_at="2019-05-15T15:30:00Z")
    assert gh(server, "deployment_status", json.dumps(failed).encode()).json()["stored"]
    assert "ignored" in gh(server, "deployment_status", json.dumps(body).encode()).json()
    assert _status(session) == ("failure", "2019-05-15T15:30:00")


# --------------------------------------------------------------------------- GitLab ids


def test_gitlab_deployment_without_deployment_id_is_keyed_by_its_job(server, session):
    from bot.surfaces.webhooks import gitlab_deployment

    old = {k: v for k, v in json.loads(gitlab_fixture()).items() if k != "deployment_id"}
    assert gitlab_deployment(old)["id"] == "gitlab-30-job-796"
    other = {**old, "deployable_id": 797, "environment": "production"}
    headers = {"X-Gitlab-Event": "Deployment Hook", "X-Gitlab-Token": SECRET}
    for body in (old, other, old):
        r = httpx.post(server + "/webhooks/deployments", json=body, headers=headers)
        assert r.status_code == 200, r.text
    rows = session.execute(select(Deployment.provider_id, Deployment.environment)).all()
    assert sorted(rows) == [("gitlab-30-job-796", "staging"), ("gitlab-30-job-797", "production")]
    anonymous = {k: v for k, v in old.items() if k != "deployable_id"}
    r = httpx.post(server + "/webhooks/deployments", json=anonymous, headers=headers)
    assert r.status_code == 400 and "no deployment_id or deployable_id" in r.json()["error"]
    assert count(session, Deployment) == 2


def _mutated(path: str, change) -> bytes:
    payload = json.loads(octokit(path))
    change(payload)
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    ("event", "body"),
    [
        (
            "pull_request",
            _mutated(
                "pull_request/opened.payload.json",
                lambda p: p["pull_request"].update(number=10**30),
            ),
        ),
        (
            "pull_request_review",
            _mutated(
                "pull_request_review/submitted.payload.json",
                lambda p: p["pull_request"].update(number=True),
            ),
        ),
    ],
)
def test_verified_github_values_no_column_takes_are_400(server, session, caplog, event, body):
    caplog.set_level(logging.INFO, logger="kpibot")
    r = gh(server, event, body)
    assert r.status_code == 400, r.text
    assert len(_refusals(caplog)) == 1
    assert count(session, PullRequest) == 0 and count(session, Review) == 0


def test_verified_values_too_long_for_a_column_are_never_a_500(server, session, caplog):
    """PostgreSQL enforces column lengths (SQLite stores the text as it is)."""
    caplog.set_level(logging.INFO, logger="kpibot")
    body = _mutated(
        "pull_request/opened.payload.json",
        lambda p: p["pull_request"]["user"].update(login="u" * 300),
    )
    r = gh(server, "pull_request", body)
    if session.get_bind().dialect.name == "postgresql":
        assert r.status_code == 400 and "too long or out of range" in r.json()["error"]
        assert count(session, PullRequest) == 0
    else:
        assert r.status_code == 200, r.text
    _refusals(caplog)


def test_github_pull_request_of_a_member_is_the_teams_when_written(engine, session):
    """A team defined by its people counts a PR delivered by webhook at once (a team defined
    by paths waits for the sync, which brings the files)."""
    from bot.store.models import TeamPullRequest

    people = Config(
        (
            TeamConfig(name="hello", repos=("Codertocat/Hello-World",), members=("codertocat",)),
            TeamConfig(name="others", repos=("Codertocat/Hello-World",), members=("someone",)),
        )
    )
    sync_teams(session, people)
    session.commit()
    app = HttpApp()
    install(app, Webhooks(session_factory(engine), people, SECRET))
    with Server(app, host="127.0.0.1", port=0, threads=4) as srv:
        r = gh(srv.url, "pull_request", octokit("pull_request/opened.payload.json"))
        assert r.status_code == 200, r.text
    session.expire_all()
    kept = session.execute(select(TeamPullRequest.team_id)).scalars().all()
    assert kept == [team_id(session, "hello")]
