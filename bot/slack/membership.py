"""Make sure kpibot can post a channel's digests before a subscription is stored.

``chat:write.public`` lets the bot post in a public channel it has not joined, but the
scheduler's exactly-once check reads the channel's history before a retry, and that needs
membership. So at subscribe time kpibot joins a public channel (``conversations.join``,
scope ``channels:join``) and asks for an invitation to a private one, storing nothing
until it is a member.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger("kpibot.slack")

INVITE = (
    "I'm not a member of <#{channel}>, and it's private, so I can't post its digests. "
    "Invite me with `/invite @kpibot` in the channel, then subscribe again. "
    "Nothing was subscribed."
)
JOIN_FAILED = (
    "I couldn't join <#{channel}> (Slack said {error}). Invite me with `/invite @kpibot` in "
    "the channel, then subscribe again. Nothing was subscribed."
)
ARCHIVED = "<#{channel}> is archived, so I can't post digests there. Nothing was subscribed."
UNCHECKED = (
    "I couldn't check whether I can post in <#{channel}> (Slack said {error}); please try "
    "again in a moment. Nothing was subscribed."
)


def ensure_member(client: WebClient, channel: str) -> str | None:
    """None when the bot is (now) a member of ``channel``; else what the subscriber must do."""
    if channel.startswith("D"):  # a direct message with the bot
        return None
    try:
        info = client.conversations_info(channel=channel)
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "an error")
        if error == "channel_not_found":  # how a private channel the bot is not in looks
            return INVITE.format(channel=channel)
        log.warning("conversations.info failed for %s: %s", channel, error)
        return UNCHECKED.format(channel=channel, error=error)
    ch = info.get("channel") or {}
    if ch.get("is_archived"):
        return ARCHIVED.format(channel=channel)
    if ch.get("is_member") or ch.get("is_im"):
        return None
    if ch.get("is_private") or ch.get("is_mpim") or ch.get("is_group"):
        return INVITE.format(channel=channel)
    try:
        client.conversations_join(channel=channel)
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "an error")
        log.warning("conversations.join failed for %s: %s", channel, error)
        if error == "is_archived":
            return ARCHIVED.format(channel=channel)
        return JOIN_FAILED.format(channel=channel, error=error)
    log.info("joined %s to post its digests", channel)
    return None
