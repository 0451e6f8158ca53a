"""An httpx client for GitHub's GraphQL and REST APIs (github.com and GitHub Enterprise Server).

``GITHUB_API_URL`` picks the server: ``https://api.github.com`` (GraphQL at
``https://api.github.com/graphql``) or a GitHub Enterprise Server ``https://HOST/api/v3``
(GraphQL at ``https://HOST/api/graphql``); any other base URL gets ``/graphql`` appended.

Faults are handled here so callers see either data or one :class:`GitHubError` whose message
says what to check:

- primary rate limit (``x-ratelimit-remaining: 0``, or a GraphQL ``RATE_LIMITED`` error): wait
  until ``x-ratelimit-reset``, then go on;
- secondary rate limits (403/429 with ``retry-after``, or a "secondary rate limit" message):
  wait as told (or ``secondary_wait``, doubling), then go on;
- 5xx, timeouts, dropped connections and bodies that are not JSON: bounded retries with
  exponential backoff, then :class:`GitHubUnavailable`;
- 401/403: :class:`GitHubAuthError`; 404 (or a GraphQL ``NOT_FOUND``): :class:`GitHubNotFound`,
  both naming the repository and what to check;
- GraphQL ``errors`` next to ``data``: returned as :class:`GraphQLResult` with both, so the
  caller can keep the partial data.

The token is sent as a header and never appears in a message, log line or exception.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot import __version__
from bot.errors import KpibotError

log = logging.getLogger(__name__)

USER_AGENT = f"kpibot/{__version__} (+https://github.com/kpibot/kpibot)"
API_VERSION = "2022-11-28"


class GitHubError(KpibotError):
    """A GitHub request failed for good; the message says what to check next."""

    def __init__(self, message: str, *, repo: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.repo = repo
        self.status = status


class GitHubAuthError(GitHubError):
    """401 (the token is wrong or expired) or 403 (the token may not read this)."""


class GitHubNotFound(GitHubError):
    """404: the repository (or workflow, ...) does not exist or the token cannot see it."""


class GitHubUnavailable(GitHubError):
    """5xx, timeouts, dropped connections or malformed bodies, after every retry.

    ``kind``: ``server`` (5xx), ``timeout``, ``connection``, ``body`` (not JSON) or
    ``rate-limit``."""

    def __init__(
        self,
        message: str,
        *,
        repo: str | None = None,
        status: int | None = None,
        kind: str = "server",
    ) -> None:
        super().__init__(message, repo=repo, status=status)
        self.kind = kind


class GitHubGraphQLError(GitHubError):
    """A GraphQL response with errors and no data."""


@dataclass
class GraphQLResult:
    data: dict[str, Any]
    errors: list[dict[str, Any]] = field(default_factory=list)

    def error_text(self) -> str:
        return "; ".join(str(e.get("message", e)) for e in self.errors)


@dataclass
class RestPage:
    body: Any
    next_url: str | None
    status: int


def graphql_url_for(api_url: str) -> str:
    """GraphQL endpoint of a REST base URL (github.com, GHES ``/api/v3``, or anything else)."""
    base = api_url.rstrip("/")
    parts = urlsplit(base)
    if parts.hostname == "api.github.com":
        return f"{parts.scheme}://{parts.netloc}/graphql"
    if parts.path.endswith("/api/v3"):
        return base[: -len("/v3")] + "/graphql"
    return base + "/graphql"


def _what(repo: str | None) -> str:
    return f" for {repo}" if repo else ""


class GitHubClient:
    """GitHub GraphQL + REST over one pooled httpx client. Not shared across threads."""

    def __init__(
        self,
        token: str | None,
        api_url: str = "https://api.github.com",
        *,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        secondary_wait: float = 60.0,
        max_rate_limit_wait: float = 3700.0,
        max_rate_limit_waits: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        on_wait: Callable[[str], None] | None = None,
        user_agent: str = USER_AGENT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_url.startswith(("http://", "https://")):
            raise GitHubError(
                f"GITHUB_API_URL must be a URL such as https://api.github.com or "
                f"https://HOST/api/v3 (GitHub Enterprise Server), not '{api_url}'"
            )
        self.api_url = api_url.rstrip("/")
        self.graphql_url = graphql_url_for(self.api_url)
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.secondary_wait = secondary_wait
        self.max_rate_limit_wait = max_rate_limit_wait
        self.max_rate_limit_waits = max_rate_limit_waits
        self._sleep = sleep
        self._clock = clock
        self.on_wait = on_wait
        self.requests_made = 0
        self.rate_remaining: int | None = None
        self.rate_reset: float | None = None
        headers = {
            "User-Agent": user_agent,
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
            transport=transport,
            follow_redirects=True,
        )

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> GitHubClient:
        return cls(settings.github_token, settings.github_api_url, **kwargs)

    def pause(self, seconds: float) -> None:
        """Sleep as this client does between retries (tests pass a recording ``sleep``)."""
        self._sleep(seconds)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ public API

    def graphql(
        self, query: str, variables: Mapping[str, Any] | None = None, *, repo: str | None = None
    ) -> GraphQLResult:
        """Run a query; raises unless there is data (partial data comes with its errors)."""
        payload = {"query": query, "variables": dict(variables or {})}
        rate_waits = 0
        while True:
            resp, body = self._request("POST", self.graphql_url, json_body=payload, repo=repo)
            if not isinstance(body, dict):
                raise GitHubUnavailable(
                    f"GitHub's GraphQL API{_what(repo)} answered with something that is not a "
                    "JSON object; try again later",
                    repo=repo,
                )
            errors = body.get("errors") or []
            if not isinstance(errors, list):
                errors = [{"message": str(errors)}]
            data = body.get("data")
            types = {str(e.get("type", "")).upper() for e in errors if isinstance(e, dict)}
            if "RATE_LIMITED" in types and rate_waits < self.max_rate_limit_waits:
                rate_waits += 1
                self._wait_primary(resp, repo)
                continue
            missing = [
                e
                for e in errors
                if isinstance(e, dict)
                and str(e.get("type", "")).upper() in ("NOT_FOUND", "FORBIDDEN")
                and isinstance(e.get("path"), list)
                and len(e["path"]) == 1
                and (not isinstance(data, dict) or data.get(str(e["path"][0])) is None)
            ]
            if missing:
                text = str(missing[0].get("message", ""))
                if str(missing[0].get("type")).upper() == "FORBIDDEN":
                    raise GitHubAuthError(
                        self._forbidden_message(repo, text), repo=repo, status=403
                    )
                raise GitHubNotFound(self._not_found_message(repo, text), repo=repo, status=404)
            if isinstance(data, dict) and any(v is not None for v in data.values()):
                if errors:
                    log.info("GraphQL partial data%s: %s", _what(repo), errors)
                return GraphQLResult(data, [e for e in errors if isinstance(e, dict)])
            text = "; ".join(
                str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors
            )
            if "NOT_FOUND" in types:
                raise GitHubNotFound(self._not_found_message(repo, text), repo=repo, status=404)
            if "FORBIDDEN" in types:
                raise GitHubAuthError(self._forbidden_message(repo, text), repo=repo, status=403)
            raise GitHubGraphQLError(
                f"GitHub's GraphQL API refused the query{_what(repo)}: {text or 'no data'}",
                repo=repo,
            )

    def rest(
        self,
        path_or_url: str,
        params: Mapping[str, Any] | None = None,
        *,
        repo: str | None = None,
    ) -> RestPage:
        """One GET of a REST path (``/repos/o/r/...``) or a full ``next`` URL."""
        url = path_or_url if "://" in path_or_url else self.api_url + path_or_url
        resp, body = self._request("GET", url, params=params, repo=repo)
        nxt = resp.links.get("next", {}).get("url")
        return RestPage(body, nxt, resp.status_code)

    def paginate(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        repo: str | None = None,
    ) -> Iterator[RestPage]:
        """Every page of a REST list, following the ``Link: <...>; rel="next"`` header."""
        page = self.rest(path, params, repo=repo)
        yield page
        while page.next_url:
            page = self.rest(page.next_url, repo=repo)
            yield page

    # ------------------------------------------------------------------ transport

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        repo: str | None = None,
    ) -> tuple[httpx.Response, Any]:
        attempt = 0  # retries used on 5xx/timeouts/bad bodies
        rate_waits = 0
        secondary = 0
        while True:
            self._respect_known_limit(repo)
            try:
                self.requests_made += 1
                resp = self._http.request(method, url, params=params, json=json_body)
            except httpx.TimeoutException as exc:
                attempt = self._retry_or_raise(
                    attempt, repo, f"timed out ({type(exc).__name__})", "timeout"
                )
                continue
            except httpx.TransportError as exc:
                attempt = self._retry_or_raise(
                    attempt, repo, f"connection failed ({exc})", "connection"
                )
                continue
            self._note_rate(resp)
            status = resp.status_code
            if status in (403, 429):
                kind = self._rate_limit_kind(resp)
                if kind == "primary" and rate_waits < self.max_rate_limit_waits:
                    rate_waits += 1
                    self._wait_primary(resp, repo)
                    continue
                if kind == "secondary" and secondary < self.max_rate_limit_waits:
                    secondary += 1
                    self._wait_secondary(resp, repo, secondary)
                    continue
                if kind is not None:
                    raise GitHubUnavailable(
                        f"GitHub kept rate-limiting requests{_what(repo)}; run the sync again "
                        "later (it resumes where it stopped)",
                        repo=repo,
                        status=status,
                        kind="rate-limit",
                    )
                if status == 429:
                    raise GitHubUnavailable(
                        f"GitHub answered 429 Too Many Requests{_what(repo)}; try again later",
                        repo=repo,
                        status=429,
                        kind="rate-limit",
                    )
                raise GitHubAuthError(
                    self._forbidden_message(repo, self._message(resp)), repo=repo, status=403
                )
            if status == 401:
                raise GitHubAuthError(
                    f"GitHub rejected the token (401 {self._message(resp) or 'Bad credentials'})"
                    f"{_what(repo)}: check that GITHUB_TOKEN is set, not expired, and valid for "
                    f"{self.api_url}",
                    repo=repo,
                    status=401,
                )
            if status == 404:
                raise GitHubNotFound(
                    self._not_found_message(repo, self._message(resp)), repo=repo, status=404
                )
            if status >= 500:
                attempt = self._retry_or_raise(attempt, repo, f"GitHub answered {status}", "server")
                continue
            if status >= 400:
                raise GitHubError(
                    f"GitHub answered {status} {self._message(resp)}{_what(repo)}",
                    repo=repo,
                    status=status,
                )
            try:
                body = json.loads(resp.content) if resp.content else None
            except ValueError:
                attempt = self._retry_or_raise(
                    attempt, repo, "the answer was not valid JSON", "body"
                )
                continue
            return resp, body

    def _retry_or_raise(self, attempt: int, repo: str | None, why: str, kind: str) -> int:
        if attempt >= self.max_retries:
            raise GitHubUnavailable(
                f"GitHub is not answering properly{_what(repo)}: {why}, "
                f"{attempt + 1} times; check {self.api_url} (and GitHub's status page), then "
                "run the sync again: it resumes where it stopped",
                repo=repo,
                kind=kind,
            )
        delay = min(self.max_backoff, self.backoff * (2**attempt))
        log.info("GitHub request%s: %s; retrying in %.1fs", _what(repo), why, delay)
        self._sleep(delay)
        return attempt + 1

    # ------------------------------------------------------------------ rate limits

    def _note_rate(self, resp: httpx.Response) -> None:
        remaining = resp.headers.get("x-ratelimit-remaining")
        reset = resp.headers.get("x-ratelimit-reset")
        if remaining is not None and remaining.strip().isdigit():
            self.rate_remaining = int(remaining)
        if reset is not None:
            try:
                value = float(reset)
            except ValueError:
                return
            if value > 1e11:  # milliseconds (some recordings); GitHub sends seconds
                value /= 1000
            self.rate_reset = value

    def _respect_known_limit(self, repo: str | None) -> None:
        """With no requests left before the reset, wait instead of spending one on a 403."""
        if self.rate_remaining == 0 and self.rate_reset is not None:
            if self.rate_reset > self._clock():
                self._wait_until(self.rate_reset, repo)
            self.rate_remaining = None

    @staticmethod
    def _message(resp: httpx.Response) -> str:
        try:
            body = resp.json()
        except ValueError:
            return resp.text[:200].strip()
        if isinstance(body, dict):
            return str(body.get("message", ""))[:300]
        return ""

    def _rate_limit_kind(self, resp: httpx.Response) -> str | None:
        if resp.headers.get("retry-after") is not None:
            return "secondary"
        message = self._message(resp).lower()
        if "secondary rate limit" in message or "abuse" in message:
            return "secondary"
        if resp.headers.get("x-ratelimit-remaining") == "0" or "rate limit" in message:
            return "primary"
        return None

    def _wait_primary(self, resp: httpx.Response, repo: str | None) -> None:
        self._note_rate(resp)
        reset = self.rate_reset
        if reset is None or reset <= self._clock():
            reset = self._clock() + self.secondary_wait
        self._wait_until(reset, repo)
        self.rate_remaining = None

    def _wait_until(self, reset: float, repo: str | None) -> None:
        delay = max(0.0, reset - self._clock()) + 1.0
        if delay > self.max_rate_limit_wait:
            raise GitHubUnavailable(
                f"GitHub's rate limit resets only in {delay / 60:.0f} minutes{_what(repo)}; run "
                "the sync again later (it resumes where it stopped)",
                repo=repo,
                kind="rate-limit",
            )
        at = datetime.fromtimestamp(reset, UTC).strftime("%H:%M:%S UTC")
        self._notify(f"GitHub rate limit reached; waiting {delay:.0f}s (until {at})")
        self._sleep(delay)

    def _wait_secondary(self, resp: httpx.Response, repo: str | None, n: int) -> None:
        raw = resp.headers.get("retry-after")
        try:
            delay = float(raw) if raw is not None else self.secondary_wait * (2 ** (n - 1))
        except ValueError:
            delay = self.secondary_wait * (2 ** (n - 1))
        delay = min(max(delay, 0.0), self.max_rate_limit_wait)
        self._notify(f"GitHub secondary rate limit{_what(repo)}; waiting {delay:.0f}s")
        self._sleep(delay)

    def _notify(self, message: str) -> None:
        if self.on_wait is not None:
            log.info(message)
            self.on_wait(message)
        else:
            log.warning(message)

    # ------------------------------------------------------------------ messages

    def _not_found_message(self, repo: str | None, detail: str) -> str:
        if repo:
            return (
                f"{repo} was not found on {self.api_url} ({detail or '404'}): check the name "
                "in kpibot.yml and that GITHUB_TOKEN can read it (private repositories need "
                "the 'repo' scope, or 'Contents', 'Pull requests', 'Deployments', 'Actions' "
                "and 'Issues' read access for a fine-grained token)"
            )
        return f"not found on {self.api_url} ({detail or '404'})"

    def _forbidden_message(self, repo: str | None, detail: str) -> str:
        return (
            f"GitHub refused access{_what(repo)} (403 {detail or 'Forbidden'}): check that "
            "GITHUB_TOKEN has read access to the repository, and that it is authorised for "
            "the organisation's SAML single sign-on if it uses one"
        )
