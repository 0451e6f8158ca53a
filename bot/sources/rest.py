"""A small JSON-over-HTTP client for the non-GitHub sources (Jira, PagerDuty, Opsgenie).

Retries 429 (honouring ``Retry-After``), 5xx, timeouts and dropped connections with capped
exponential backoff; other errors become :class:`SourceError` with a message that says what
to check. Secrets passed in headers never appear in messages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from bot.errors import KpibotError

log = logging.getLogger("kpibot.sources")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class SourceError(KpibotError):
    """A source API could not be read; the message names the source and what to check.
    ``status`` is the HTTP status of a refused request (None when it never answered)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RestClient:
    """GET JSON from one API with retries. ``name`` labels messages (e.g. ``Jira``)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        headers: Mapping[str, str],
        *,
        auth: httpx.Auth | tuple[str, str] | None = None,
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 1.0,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        hint: str = "",
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep = sleep
        self.hint = hint
        self.requests = 0
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Accept": "application/json", **headers},
            auth=auth,
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            raw = response.headers.get("Retry-After")
            if raw is not None:
                try:
                    return min(max(float(raw), 0.0), self.max_wait)
                except ValueError:
                    pass
        return min(self.backoff * (2**attempt), self.max_wait)

    def get(
        self, path: str, params: Mapping[str, Any] | list[tuple[str, Any]] | None = None
    ) -> Any:
        """The decoded JSON body of ``GET path``; raises :class:`SourceError` when it fails."""
        last = ""
        for attempt in range(self.retries + 1):
            response: httpx.Response | None = None
            try:
                self.requests += 1
                response = self._http.get(path, params=params)
            except httpx.TimeoutException:
                last = "timed out"
            except httpx.TransportError as exc:
                last = f"connection failed ({type(exc).__name__})"
            else:
                if response.status_code < 300:
                    try:
                        return response.json()
                    except ValueError:
                        raise SourceError(
                            f"{self.name} answered {path} with a body that is not JSON; "
                            f"check the URL ({self.base_url})"
                        ) from None
                if response.status_code not in RETRY_STATUSES:
                    raise SourceError(self._message(path, response), response.status_code)
                last = f"HTTP {response.status_code}"
            if attempt < self.retries:
                wait = self._wait(attempt, response)
                log.info("%s %s: %s, retrying in %.1fs", self.name, path, last, wait)
                self.sleep(wait)
        raise SourceError(
            f"{self.name} did not answer {path} after {self.retries + 1} attempts ({last}); "
            "try again later"
        )

    def _message(self, path: str, response: httpx.Response) -> str:
        code = response.status_code
        detail = _error_detail(response)
        if code in (401, 403):
            advice = self.hint or "check the credentials"
            return f"{self.name} refused {path} (HTTP {code}{detail}): {advice}"
        if code == 404:
            return f"{self.name} has no {path} (HTTP 404{detail}): check the ids in kpibot.yml"
        return f"{self.name} rejected {path} (HTTP {code}{detail})"


def _error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    parts: list[str] = []
    if isinstance(body, dict):
        for key in ("errorMessages", "errors", "message", "error"):
            value = body.get(key)
            if isinstance(value, list):
                parts.extend(str(v) for v in value[:3])
            elif isinstance(value, dict):
                parts.extend(str(v) for v in list(value.values())[:3])
            elif value:
                parts.append(str(value))
    text = "; ".join(p for p in parts if p)[:200]
    return f": {text}" if text else ""
