"""Slack listener callbacks are module-level functions: called here directly (no HTTP, no
Bolt routing) with the app's real core and the loopback fake Slack. They parse, call the
core and render; the core's field-named validation errors come back keyed by block ids."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import func, select

from bot.chat.items import FIELDS
from bot.slack import blocks
from bot.slack.listeners import actions, events, views
from bot.slack.listeners.common import Deps
from bot.slack.permissions import AdminCache
from bot.store.models import ActionItem
from tests import slack_harness as sh

slack_server, slack, kpi = sh.slack_server, sh.slack, sh.kpi


class Ack:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kw: Any) -> None:
        self.calls.append(kw)


def _submission(kpi_h: sh.Harness, **fields: Any) -> dict[str, Any]:
    body = kpi_h.submission_body(**fields)
    return dict(json.loads(parse_qs(body)["payload"][0]))


def _items(kpi_h: sh.Harness) -> int:
    with kpi_h.app.service.session() as s:
        return int(s.scalar(select(func.count()).select_from(ActionItem)) or 0)


def test_every_core_field_has_a_modal_block():
    assert set(views.FIELD_BLOCKS) == set(FIELDS)
    assert views.block_errors({"due_on": "x", "owner": "y"}) == {
        blocks.B_DUE: "x",
        blocks.B_OWNER: "y",
    }


def test_submit_called_directly_validates_in_the_core_then_stores(kpi, slack):
    slack.add_user("U0ALICE")
    slack.add_user("U0BOB")
    deps = Deps(kpi.app.service, AdminCache(kpi.app.client))
    bad = _submission(kpi, due="2026-11-01", opportunity=" ")
    ack = Ack()
    views.submit(ack, bad, bad["view"], kpi.app.client, deps)
    assert ack.calls == [
        {
            "response_action": "errors",
            "errors": {
                blocks.B_OPPORTUNITY: "Describe the opportunity.",
                blocks.B_DUE: "The due date can't be in the past (today is 2026-11-20).",
            },
        }
    ]
    assert _items(kpi) == 0
    good = _submission(kpi)
    ack = Ack()
    views.submit(ack, good, good["view"], kpi.app.client, deps)
    assert ack.calls == [{}] and _items(kpi) == 1
    [note] = slack.calls_to("chat.postMessage")
    assert note.args["channel"] == sh.PAY_CHANNEL


def test_home_called_directly_publishes_the_core_view(kpi, slack):
    slack.add_user("U0ALICE")
    deps = Deps(kpi.app.service, AdminCache(kpi.app.client))
    events.home(
        {"type": "app_home_opened", "user": "U0ALICE", "tab": "home"}, {}, kpi.app.client, deps
    )
    [published] = slack.calls_to("views.publish")
    assert published.args["user_id"] == "U0ALICE"
    assert "Your open action items (0)" in published.text_of()


def test_buttons_are_module_level_functions():
    names = [fn.__name__ for fn in actions.BUTTONS]
    assert names == [
        "share_card",
        "how_computed",
        "log_action",
        "show_chart",
        "item_done",
        "item_reopen",
        "item_edit",
        "digest_details",
        "alert_off",
    ]
    assert all(getattr(actions, n) is fn for n, fn in zip(names, actions.BUTTONS, strict=True))
