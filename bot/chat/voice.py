"""How a chat platform words the core's sentences: mentions of people and conversations,
emphasis, and how to type a command. The core builds every sentence through one of these,
so a refusal or a confirmation reads right on each surface."""

from __future__ import annotations


class Voice:
    """The platform-neutral base: plain names, ``"kpi <command>"``. Surfaces subclass it."""

    platform = "chat"

    def user(self, user_id: str) -> str:
        return user_id

    def conversation(self, conversation_id: str) -> str:
        return conversation_id

    def bold(self, text: str) -> str:
        return text

    def command(self, text: str) -> str:
        """How to type the command ``text`` (``"subscribe weekly"``; ``""``: the bot itself)."""
        return f"kpi {text}".strip()
