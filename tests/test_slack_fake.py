"""The fake Slack Web API: real WebClient calls over loopback, recorded, with faults."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.slack import BOT_TOKEN, FakeSlack


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


def client(slack: FakeSlack, token: str = BOT_TOKEN) -> WebClient:
    return WebClient(token=token, base_url=slack.api_url, timeout=5)


def test_records_calls_with_args_and_token(slack):
    c = client(slack)
    assert c.auth_test()["user_id"]
    c.chat_postMessage(channel="C1", text="hello", blocks=[{"type": "divider"}])
    call = slack.calls_to("chat.postMessage")[0]
    assert call.args["channel"] == "C1"
    assert call.blocks == [{"type": "divider"}]
    assert call.token == BOT_TOKEN
    assert c.users_info(user="U1")["user"]["id"] == "U1"
    assert slack.calls_to("users.info")[0].args["user"] == "U1"


def test_wrong_token_is_invalid_auth(slack):
    with pytest.raises(SlackApiError) as exc:
        client(slack, "xoxb-wrong").auth_test()
    assert exc.value.response["error"] == "invalid_auth"


def test_faults_rate_limit_server_error_and_slack_errors(slack):
    slack.rate_limit("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as exc:
        client(slack).chat_postMessage(channel="C1", text="x")
    assert exc.value.response.status_code == 429
    assert exc.value.response.headers["Retry-After"] == "7"
    slack.slack_error("chat.postMessage", "channel_not_found")
    with pytest.raises(SlackApiError) as exc:
        client(slack).chat_postMessage(channel="C1", text="x")
    assert exc.value.response["error"] == "channel_not_found"
    slack.server_error("users.info")
    with pytest.raises(SlackApiError):
        client(slack).users_info(user="U1")
    assert client(slack).chat_postMessage(channel="C1", text="x")["ok"]


def test_channel_membership(slack):
    slack.add_channel("C1", member=True)
    slack.add_channel("C2", member=False)
    c = client(slack)
    assert c.chat_postMessage(channel="C1", text="x")["ok"]
    for channel, error in (("C2", "not_in_channel"), ("C3", "channel_not_found")):
        with pytest.raises(SlackApiError) as exc:
            c.chat_postMessage(channel=channel, text="x")
        assert exc.value.response["error"] == error


def test_views_and_file_upload_v2(slack):
    c = client(slack)
    opened = c.views_open(trigger_id="t1", view={"type": "modal", "blocks": []})
    assert opened["view"]["id"] in slack.views
    c.views_publish(user_id="U1", view={"type": "home", "blocks": []})
    assert slack.home_views["U1"]["type"] == "home"
    done = c.files_upload_v2(channel="C1", filename="chart.png", content=b"\x89PNG data")
    assert done["file"]["id"] in slack.uploads
    methods = [x.method for x in slack.calls]
    assert methods[-3:] == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]


def test_response_url_posts_are_recorded(slack):
    import httpx

    url = slack.response_url()
    assert httpx.post(url, json={"text": "hi", "response_type": "ephemeral"}).status_code == 200
    assert slack.wait_for("response_url")[0].args["text"] == "hi"
    slack.fail_response_url(status=500)
    assert httpx.post(url, json={"text": "x"}).status_code == 500
