"""The core's answers (:mod:`bot.chat.answers`) as Slack payloads, and the Slack way of
wording the core's sentences (:class:`SlackVoice`: ``<@U1>``, ``<#C1>``, mrkdwn)."""

from __future__ import annotations

from typing import Any

from bot.chat import answers as ans
from bot.chat.voice import SlashCommand
from bot.renderers import blocks as kit
from bot.renderers import mrkdwn
from bot.renderers.mrkdwn import GITHUB_COM, Links
from bot.reports.digests import MonthlyDigest, WeeklyDigest
from bot.slack import blocks

Payload = dict[str, Any]


class SlackVoice(SlashCommand):
    platform = "slack"

    def user(self, user_id: str) -> str:
        return mrkdwn.user(user_id)

    def conversation(self, conversation_id: str) -> str:
        return mrkdwn.channel(conversation_id)


def refusal(text: str) -> Payload:
    """A refused request, as the one ephemeral line it is."""
    return blocks.message(f":no_entry: {text}")


def payload(answer: ans.Answer, links: Links = GITHUB_COM) -> Payload:
    """The Slack message for a core answer."""
    match answer:
        case ans.Notice(text):
            return blocks.message(text)
        case ans.Refused(text):
            return refusal(text)
        case ans.Problem(text, suggestions):
            return blocks.error_payload(text, suggestions)
        case ans.AskTeam(command, teams):
            return blocks.which_team_payload(command, teams)
        case ans.Help(channel_team, teams):
            return blocks.help_payload(channel_team, teams)
        case ans.CardAnswer(card):
            return blocks.card_payload(card)
        case ans.DoraAnswer(card):
            return blocks.dora_payload(card)
        case ans.HealthAnswer(health):
            return blocks.health_payload(health)
        case ans.DigestPreview(kind, digest):
            return digest_preview(kind, digest, links)
        case ans.ItemList(items, team, include_done, today):
            return blocks.actions_payload(list(items), team, include_done, today)
        case ans.TeamList(rows, channel_team):
            return blocks.teams_payload(rows, channel_team)
        case ans.SubscriptionList(conversation, subs, when):
            return blocks.subscriptions_payload(list(subs), conversation, when)
        case ans.Definition(spec, target, business_hours):
            return blocks.definition_payload(spec, target, business_hours)
        case ans.StatusAnswer(status):
            return blocks.status_payload(status)
        case ans.AgreementsAnswer(report):
            out = kit.agreements(report, links)
            return blocks.message(out["text"], out["blocks"])
    raise TypeError(f"no Slack rendering for {type(answer).__name__}")


def digest_preview(kind: str, digest: WeeklyDigest | MonthlyDigest, links: Links) -> Payload:
    out = kit.weekly(digest, links) if isinstance(digest, WeeklyDigest) else kit.monthly(digest)
    note = kit.context(
        f"Preview of the {kind} digest, only visible to you. "
        f"`/kpi subscribe {kind}` posts it in this channel on schedule."
    )
    return blocks.message(out["text"], kit.limit_blocks([*out["blocks"], note]))


def home_view(home: ans.Home) -> dict[str, Any]:
    return blocks.home_view(
        user=home.user,
        healths=list(home.healths),
        items=list(home.items),
        subscriptions=list(home.subscriptions),
        today=home.today,
        note=home.note,
    )
