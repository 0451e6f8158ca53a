"""How a chat platform words the core's sentences: mentions of people and conversations,
emphasis, how to type a command and how a person's own words are repeated back. The core
(the grammar's errors included) builds every sentence through one of these, so a refusal, a
"did you mean" or a confirmation reads right on each surface."""

from __future__ import annotations

from bot.renderers import mrkdwn


class Voice:
    """The platform-neutral base: plain names, ``"kpi <command>"``. Surfaces subclass it."""

    platform = "chat"

    def user(self, user_id: str) -> str:
        return user_id

    def person(self, role: str, user_id: str | None) -> str:
        """A person a refusal names by their ``role`` (``"its owner"``), with who they are
        when the platform can say it: ``"its owner (<@U1>)"``."""
        return f"{role} ({self.user(user_id)})" if user_id else role

    def conversation(self, conversation_id: str) -> str:
        return conversation_id

    def bold(self, text: str) -> str:
        return text

    def command(self, text: str) -> str:
        """How to type the command ``text`` (``"subscribe weekly"``; ``""``: the bot itself),
        set apart in a sentence."""
        return f"kpi {text}".strip()

    def typed(self, text: str) -> str:
        """The command ``text`` exactly as a person types it (a suggestion to try), unmarked."""
        return f"kpi {text}".strip()

    def code(self, text: str) -> str:
        """A word of the grammar (``cycle-time``, ``add``) set apart in a sentence."""
        return f"'{text}'"

    def echo(self, text: str) -> str:
        """A person's own words repeated back, so that they form no markup."""
        return text


class SlashCommand(Voice):
    """The ``/kpi`` slash command in Slack's mrkdwn: the grammar's own wording (PRODUCT.md),
    used when a caller names no voice; Slack's voice is this one with its mentions."""

    platform = "slack"

    def bold(self, text: str) -> str:
        return f"*{text}*"

    def command(self, text: str) -> str:
        return f"`{f'/kpi {text}'.strip()}`"

    def typed(self, text: str) -> str:
        return f"/kpi {text}".strip()

    def code(self, text: str) -> str:
        return f"`{text}`"

    def echo(self, text: str) -> str:
        return mrkdwn.escape(text).replace("`", "'")
