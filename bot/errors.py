"""Domain errors that carry the message a user should see.

Surfaces turn them into an ephemeral Slack reply or a one-line message and exit code 2.
"""

from __future__ import annotations

from collections.abc import Iterable


class KpibotError(Exception):
    """An error whose message is meant for the user, with advice on what to do next."""


class UnknownMetric(KpibotError):
    pass


class UnknownTeam(KpibotError):
    pass


class BadPeriod(KpibotError):
    pass


class ConfigError(KpibotError):
    """kpibot.yml is missing or invalid. ``problems`` lists every problem found."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class DatabaseNotReady(KpibotError):
    pass


def suggest(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Close matches of ``word`` among ``choices``, best first."""
    pool = list(choices)
    lowered = {c.lower(): c for c in pool}
    import difflib  # only when a suggestion is needed

    hits = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.6)
    prefix = [c for c in pool if c.lower().startswith(word.lower()) and word]
    out: list[str] = []
    for h in [lowered[h] for h in hits] + prefix:
        if h not in out:
            out.append(h)
    return out[:n]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    hits = suggest(word, choices)
    if not hits:
        return ""
    return " Did you mean " + " or ".join(f"'{h}'" for h in hits) + "?"
