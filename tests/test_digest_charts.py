"""The monthly digest is posted with its DORA chart: uploaded into the digest's thread through
Slack's external upload flow, on the loopback fake Slack."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from bot.scheduler.jobs import DigestJobs
from bot.store.session import session_factory
from tests.scheduler_fakes import ORG, SchedulerSlack, poster_for, runs, setup_org, subscribe

BEFORE = datetime(2026, 10, 20, 12, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, 14, 0, tzinfo=UTC)  # the monthly digests of October are due
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def slack():
    with SchedulerSlack() as s:
        yield s


@pytest.fixture
def f(engine):
    return session_factory(engine)


def test_monthly_digest_uploads_its_dora_chart_into_its_thread(f, slack):
    ids = setup_org(f)
    sub = subscribe(f, ids["berlin"], "CBERLIN1", "monthly", BEFORE)
    out = DigestJobs(f, ORG, poster_for(slack)).run_due(NOV_1)
    assert [(o.subscription_id, o.status) for o in out] == [(sub, "posted")]
    digest_ts = out[0].ts
    assert digest_ts
    (url_call,) = slack.calls_to("files.getUploadURLExternal")
    assert url_call.args["filename"] == "dora-berlin.png"
    assert url_call.args["alt_txt"].startswith("DORA keys by period")
    (upload,) = slack.calls_to("upload")
    assert upload.token is None  # the bytes go to the upload URL without the bot token
    data = next(iter(slack.uploads.values()))
    assert data.startswith(PNG_MAGIC) and int(url_call.args["length"]) == len(data)
    (done,) = slack.calls_to("files.completeUploadExternal")
    assert done.args["channel_id"] == "CBERLIN1"
    assert done.args["thread_ts"] == digest_ts
    files = json.loads(done.args["files"])
    assert files == [{"id": upload.args["file_id"], "title": "DORA keys · berlin"}]
    # the chart comes after the digest it belongs to
    methods = [c.method for c in slack.calls]
    assert methods.index("chat.postMessage") < methods.index("files.getUploadURLExternal")


def test_weekly_digest_has_no_chart(f, slack):
    ids = setup_org(f)
    subscribe(f, ids["berlin"], "CBERLIN1", "weekly", BEFORE)
    out = DigestJobs(f, ORG, poster_for(slack)).run_due(datetime(2026, 10, 26, 14, tzinfo=UTC))
    assert [o.status for o in out] == ["posted"]
    assert not slack.calls_to("files.getUploadURLExternal")


def test_a_chart_that_cannot_be_uploaded_leaves_the_digest_posted_once(f, slack, caplog):
    ids = setup_org(f)
    subscribe(f, ids["berlin"], "CBERLIN1", "monthly", BEFORE)
    slack.slack_error("files.completeUploadExternal", "internal_error")
    jobs = DigestJobs(f, ORG, poster_for(slack))
    with caplog.at_level(logging.WARNING, "kpibot.scheduler"):
        out = jobs.run_due(NOV_1)
    assert [o.status for o in out] == ["posted"]
    assert [r.status for r in runs(f)] == ["posted"]
    assert "without its chart" in caplog.text and "internal_error" in caplog.text
    # a later pass neither posts the digest again nor retries into a second chart
    again = jobs.run_due(NOV_1.replace(minute=5))
    assert [o.status for o in again] in ([], ["done"])
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert len(_requests(slack, "files.completeUploadExternal")) == 1


def test_an_unclear_completion_is_not_repeated(f, slack):
    # a 5xx on files.completeUploadExternal may have shared the file: never a second chart
    ids = setup_org(f)
    subscribe(f, ids["berlin"], "CBERLIN1", "monthly", BEFORE)
    slack.server_error("files.completeUploadExternal", status=502)
    out = DigestJobs(f, ORG, poster_for(slack)).run_due(NOV_1)
    assert [o.status for o in out] == ["posted"]
    assert len(_requests(slack, "files.completeUploadExternal")) == 1
    assert [r.status for r in runs(f)] == ["posted"]


def _requests(slack, method):
    """Requests that reached the fake, faults included (faults are not recorded as calls)."""
    return [r for r in slack.requests if r.path == f"/api/{method}"]
