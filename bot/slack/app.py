"""The Slack app: ``create_app(settings)`` builds a Bolt ``App`` with kpibot's listeners.

Every ``WebClient`` points at ``SLACK_API_URL`` and retries 429 (after Retry-After), 5xx and
dropped connections. Listeners run on a thread pool large enough that slow report queries
never hold up the acknowledgements of other requests.

``auth.test`` runs at start-up: a refused token stops it; in HTTP mode a Slack that cannot be
reached does not (webhooks and the health check go on) and :class:`SlackConnection` asks again
in the background, with backoff, reporting its state to ``/healthz``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.chat.service import ChatService, Clock, system_clock
from bot.errors import KpibotError
from bot.renderers.mrkdwn import Links
from bot.settings import Config, Settings, load_team_config
from bot.slack import replies
from bot.slack.answers import SlackVoice
from bot.slack.listeners import actions, agreements, commands, events, views
from bot.slack.listeners.common import OOPS, Deps
from bot.slack.permissions import AdminCache
from bot.slack.workers import ReportWorkers
from bot.store.session import make_engine, session_factory

log = logging.getLogger("kpibot.slack")

LISTENER_THREADS = 32

HOW_TO_INSTALL = (
    "create the app from manifest.yml (https://api.slack.com/apps -> Create New App -> From an "
    "app manifest), install it to your workspace"
)
TOKEN_HELP = {
    "SLACK_BOT_TOKEN": f"{HOW_TO_INSTALL}, then copy OAuth & Permissions -> Bot User OAuth "
    "Token (xoxb-...)",
    "SLACK_APP_TOKEN": f"{HOW_TO_INSTALL}, then create Basic Information -> App-Level Tokens "
    "with the scope connections:write (xapp-...); or run 'kpibot run --mode http'",
    "SLACK_SIGNING_SECRET": f"{HOW_TO_INSTALL}, then copy Basic Information -> Signing Secret",
}


class _QuietTokenWarning(logging.Filter):
    """Bolt warns that the token from the environment is unused when a client is given; the
    client carries that same token, so the warning only adds noise to the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


BOLT_LOG = logging.getLogger("kpibot.bolt")
BOLT_LOG.addFilter(_QuietTokenWarning())

PROBE_LOG = logging.getLogger("kpibot.slack.probe")  # the SDK's own line for each failed probe
PROBE_LOG.setLevel(logging.CRITICAL)


class SlackSetupError(KpibotError):
    """A missing or refused Slack credential; the message names the variable and the fix."""


class SlackUnreachable(SlackSetupError):
    """Slack's Web API could not be reached or was unavailable (network, 5xx, 429)."""


def missing(variable: str, problem: str = "is not set") -> SlackSetupError:
    return SlackSetupError(f"{variable} {problem}: {TOKEN_HELP[variable]}")


def web_client(settings: Settings, token: str | None = None, backoff: float = 0.5) -> WebClient:
    """A WebClient on ``SLACK_API_URL`` with kpibot's retry policy."""
    base = (
        settings.slack_api_url
        if settings.slack_api_url.endswith("/")
        else settings.slack_api_url + "/"
    )
    return WebClient(
        token=token or settings.slack_bot_token,
        base_url=base,
        timeout=15,
        retry_handlers=replies.retry_handlers(backoff=backoff),
    )


def check_token(client: WebClient) -> dict[str, Any]:
    """``auth.test``; a refused token becomes one clear line (:class:`SlackSetupError`), a
    Slack that cannot be reached or answers 5xx/429 :class:`SlackUnreachable`."""
    try:
        return dict(client.auth_test().data)  # type: ignore[arg-type]
    except SlackApiError as exc:
        status = exc.response.status_code
        if status >= 500 or status == 429:
            raise SlackUnreachable(
                f"Slack's Web API at {client.base_url} is unavailable (HTTP {status}); "
                "check https://slack-status.com or SLACK_API_URL"
            ) from None
        error = exc.response.get("error") or f"HTTP {status}"
        raise missing("SLACK_BOT_TOKEN", f"was refused by Slack ({error})") from None
    except OSError as exc:
        raise SlackUnreachable(
            f"Slack's Web API at {client.base_url} could not be reached ({type(exc).__name__}); "
            "check the network or SLACK_API_URL"
        ) from None


class SlackConnection:
    """Whether Slack accepted the bot token: ``state`` is ``ok``, ``unreachable`` (still
    asking, with backoff) or ``refused``. ``/healthz`` reports it."""

    def __init__(
        self, client: WebClient, *, first_wait: float = 1.0, max_wait: float = 60.0
    ) -> None:
        self.client = client
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.state = "unknown"
        self.auth: dict[str, Any] = {}
        # called with auth.test's answer once Slack accepts the token (at start or later)
        self.on_connected: Callable[[dict[str, Any]], None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self, client: WebClient | None = None) -> dict[str, Any]:
        """``auth.test`` once; records the state and raises as :func:`check_token` does."""
        try:
            self.auth = check_token(client or self.client)
        except SlackUnreachable:
            self.state = "unreachable"
            raise
        except SlackSetupError:
            self.state = "refused"
            raise
        if self.on_connected is not None:
            self.on_connected(self.auth)
        self.state = "ok"
        log.info("connected to Slack as %s in %s", self.auth.get("user"), self.auth.get("team"))
        return self.auth

    def retry_in_background(self) -> None:
        """Ask again until Slack answers: waits double from ``first_wait`` up to
        ``max_wait``; a refused token ends it with the clear line in the log."""
        self._thread = threading.Thread(target=self._retry, name="kpibot-slack-auth", daemon=True)
        self._thread.start()

    def _retry(self) -> None:
        # A plain loop rather than tenacity: the wait is Event.wait so close() ends it at
        # once, and there is nothing else to configure. The loop is the retry policy, so the
        # probe makes one attempt per pass, and only this loop's line goes to the log.
        probe = WebClient(
            token=self.client.token,
            base_url=self.client.base_url,
            timeout=self.client.timeout,
            logger=PROBE_LOG,
        )
        wait = self.first_wait
        while not self._stop.wait(wait):
            try:
                self.check(probe)
                return
            except SlackUnreachable as exc:
                log.warning("%s; asking again in %.0f s", exc, min(wait * 2, self.max_wait))
            except SlackSetupError as exc:
                log.error("%s", exc)
                return
            wait = min(wait * 2, self.max_wait)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


@dataclass
class KpiApp:
    """The Bolt app with what built it (tests and ``kpibot run`` use both)."""

    bolt: App
    service: ChatService
    client: WebClient
    executor: ThreadPoolExecutor
    workers: ReportWorkers | None = None
    signing_secret: str = ""  # HTTP mode verifies every request with it before parsing it
    slack: SlackConnection | None = None
    hooks_url: str = replies.SLACK_HOOKS_URL

    def close(self) -> None:
        if self.slack is not None:
            self.slack.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.workers is not None:
            self.workers.close()


def create_app(
    settings: Settings,
    client: WebClient | None = None,
    *,
    mode: str = "http",
    config: Config | None = None,
    clock: Clock | None = None,
    threads: int = LISTENER_THREADS,
    backoff: float = 0.5,
    report_workers: int = 0,
    slack_retry: float = 1.0,
) -> KpiApp:
    """Build the app from settings. ``mode`` is ``http`` (needs SLACK_SIGNING_SECRET) or
    ``socket`` (requests arrive over the Socket Mode connection, verified by Slack).
    ``report_workers`` > 0 computes reports in that many worker processes (``kpibot run``
    uses one per core); 0 computes them on the listener threads. In HTTP mode a Slack that
    cannot be reached is asked again in the background, first after ``slack_retry`` s."""
    if client is None:
        if not settings.slack_bot_token:
            raise missing("SLACK_BOT_TOKEN")
        client = web_client(settings, backoff=backoff)
    if mode == "http" and not settings.slack_signing_secret:
        raise missing("SLACK_SIGNING_SECRET")
    slack = SlackConnection(client, first_wait=slack_retry)
    try:
        slack.check()
    except SlackUnreachable as exc:
        if mode != "http":
            raise
        log.warning("%s; starting anyway and asking again in the background", exc)
    cfg = config or load_team_config(settings)
    engine = make_engine(settings.database_url)
    links = Links.of(settings)
    service = ChatService(
        session_factory(engine), cfg, clock or system_clock, SlackVoice(), links=links
    )

    def installed_workspace(auth: dict[str, Any]) -> None:
        # requests from another workspace are refused once the installed one is known
        service.home_workspace = auth.get("team_id") or None

    slack.on_connected = installed_workspace
    if slack.state == "ok":
        installed_workspace(slack.auth)
    service.prepare()
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kpibot-listener")
    bolt = App(
        client=client,
        signing_secret=settings.slack_signing_secret or "",
        process_before_response=False,
        token_verification_enabled=False,
        request_verification_enabled=True,
        listener_executor=executor,
        name="kpibot",
        logger=BOLT_LOG,
    )
    workers = None
    if report_workers > 0:
        workers = ReportWorkers(settings.database_url, cfg, report_workers, links)
        workers.warm_up()
    hooks_url = settings.hooks_url()
    deps = Deps(service, AdminCache(client), backoff=backoff, workers=workers, hooks_url=hooks_url)
    commands.register(bolt, deps)
    actions.register(bolt, deps)
    views.register(bolt, deps)
    agreements.register(bolt, deps)
    events.register(bolt, deps)

    @bolt.error
    def on_error(error: Exception, body: dict[str, Any]) -> None:
        # Bodies reach Bolt only once verified (HTTP mode checks the signature first; Socket
        # Mode requests come over Slack's own connection), and the URL must be Slack's.
        kind = body.get("type") or ("command" if body.get("command") else "request")
        log.error("unhandled %s error in a %s listener", type(error).__name__, kind)
        url = body.get("response_url")
        if url:
            try:
                payload = {"text": OOPS, "response_type": "ephemeral"}
                replies.post_response_url(url, payload, hooks_url)
            except Exception:
                log.warning("could not tell the user about the error")

    if slack.state == "unreachable":
        slack.retry_in_background()
    return KpiApp(
        bolt,
        service,
        client,
        executor,
        workers,
        signing_secret=settings.slack_signing_secret or "",
        slack=slack,
        hooks_url=hooks_url,
    )
