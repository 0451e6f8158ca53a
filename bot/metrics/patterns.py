"""Bot accounts and ignored paths (METRICS.md, Principles and Aggregation)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache


def _author_regex(pattern: str) -> str:
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))  # '[' and ']' are literal
    return "".join(out)


@lru_cache(maxsize=256)
def _author_matcher(patterns: tuple[str, ...]) -> re.Pattern[str]:
    if not patterns:
        return re.compile(r"(?!x)x")
    return re.compile("|".join(f"(?:{_author_regex(p)})" for p in patterns), re.IGNORECASE)


class BotFilter:
    """Tells whether an account is a bot: the provider says so, a ``[bot]`` login, or a pattern.

    Patterns are case-insensitive; only ``*`` and ``?`` are wildcards.
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        self._re = _author_matcher(self.patterns)
        self._cache: dict[str, bool] = {}

    def __call__(self, login: str | None, provider_says_bot: bool = False) -> bool:
        if provider_says_bot:
            return True
        if not login:
            return False
        hit = self._cache.get(login)
        if hit is None:
            hit = login.lower().endswith("[bot]") or bool(self._re.fullmatch(login))
            self._cache[login] = hit
        return hit


def _glob_regex(pattern: str) -> tuple[str, bool]:
    """Translate a .gitignore-style pattern; returns (regex, directory_only)."""
    p = pattern.strip()
    dir_only = p.endswith("/")
    p = p.rstrip("/")
    anchored = "/" in p
    p = p.lstrip("/")
    i = 0
    out = []
    while i < len(p):
        if p.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif p.startswith("/**", i) and i + 3 == len(p):
            out.append("/.*")
            i += 3
        elif p.startswith("**", i):
            out.append(".*")
            i += 2
        elif p[i] == "*":
            out.append("[^/]*")
            i += 1
        elif p[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(p[i]))
            i += 1
    body = "".join(out)
    if not anchored:
        body = "(?:.*/)?" + body
    return body, dir_only


class PathFilter:
    """Matches repository paths against .gitignore-style patterns.

    ``*`` does not cross ``/``, ``**/`` matches zero or more folders, and a pattern without
    ``/`` matches a name in any folder. A pattern that matches a folder covers what is in it.
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(p for p in patterns if p.strip())
        file_parts = []
        dir_parts = []
        for p in self.patterns:
            rx, dir_only = _glob_regex(p)
            # a folder match covers everything below it
            dir_parts.append(rx)
            if not dir_only:
                file_parts.append(rx)
        self._file = re.compile("|".join(f"(?:{r})" for r in file_parts) or r"(?!x)x")
        self._dir = re.compile(
            "(?:" + "|".join(f"(?:{r})" for r in dir_parts) + ")/.*" if dir_parts else r"(?!x)x"
        )
        self._cache: dict[str, bool] = {}

    def __call__(self, path: str) -> bool:
        hit = self._cache.get(path)
        if hit is None:
            hit = bool(self._file.fullmatch(path) or self._dir.fullmatch(path))
            self._cache[path] = hit
        return hit
