"""The Slack app: ``create_app(settings)`` builds a Bolt ``App`` with kpibot's listeners.

Every ``WebClient`` points at ``SLACK_API_URL`` and retries 429 (after Retry-After), 5xx and
dropped connections. Listeners run on a thread pool large enough that slow report queries
never hold up the acknowledgements of other requests.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import KpibotError
from bot.renderers.mrkdwn import Links
from bot.settings import Config, Settings, load_team_config
from bot.slack import replies
from bot.slack.listeners import actions, commands, events, views
from bot.slack.listeners.common import OOPS, Deps
from bot.slack.permissions import AdminCache
from bot.slack.service import Clock, Service, system_clock
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


class SlackSetupError(KpibotError):
    """A missing or refused Slack credential; the message names the variable and the fix."""


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


@dataclass
class KpiApp:
    """The Bolt app with what built it (tests and ``kpibot run`` use both)."""

    bolt: App
    service: Service
    client: WebClient
    executor: ThreadPoolExecutor
    workers: ReportWorkers | None = None

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.workers is not None:
            self.workers.close()


def check_token(client: WebClient) -> dict[str, Any]:
    """``auth.test``; a refused token becomes one clear line."""
    try:
        return dict(client.auth_test().data)  # type: ignore[arg-type]
    except SlackApiError as exc:
        error = exc.response.get("error") or f"HTTP {exc.response.status_code}"
        raise missing("SLACK_BOT_TOKEN", f"was refused by Slack ({error})") from None
    except OSError as exc:
        raise SlackSetupError(
            f"Slack's Web API at {client.base_url} could not be reached ({type(exc).__name__}); "
            "check the network or SLACK_API_URL"
        ) from None


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
) -> KpiApp:
    """Build the app from settings. ``mode`` is ``http`` (needs SLACK_SIGNING_SECRET) or
    ``socket`` (requests arrive over the Socket Mode connection, verified by Slack).
    ``report_workers`` > 0 computes reports in that many worker processes (``kpibot run``
    uses one per core); 0 computes them on the listener threads."""
    if client is None:
        if not settings.slack_bot_token:
            raise missing("SLACK_BOT_TOKEN")
        client = web_client(settings, backoff=backoff)
    if mode == "http" and not settings.slack_signing_secret:
        raise missing("SLACK_SIGNING_SECRET")
    auth = check_token(client)
    cfg = config or load_team_config(settings)
    engine = make_engine(settings.database_url)
    links = Links.of(settings)
    service = Service(session_factory(engine), cfg, clock or system_clock, links=links)
    service.home_workspace = auth.get("team_id") or None  # requests from elsewhere are refused
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
    log.info("connected to Slack as %s in %s", auth.get("user"), auth.get("team"))
    workers = None
    if report_workers > 0:
        workers = ReportWorkers(settings.database_url, cfg, report_workers, links)
        workers.warm_up()
    deps = Deps(service, AdminCache(client), backoff=backoff, workers=workers)
    commands.register(bolt, deps)
    actions.register(bolt, deps)
    views.register(bolt, deps)
    events.register(bolt, deps)

    @bolt.error
    def on_error(error: Exception, body: dict[str, Any]) -> None:
        kind = body.get("type") or ("command" if body.get("command") else "request")
        log.error("unhandled %s error in a %s listener", type(error).__name__, kind)
        url = body.get("response_url")
        if url:
            try:
                from slack_sdk.webhook import WebhookClient

                WebhookClient(url).send(text=OOPS, response_type="ephemeral")
            except Exception:
                log.warning("could not tell the user about the error")

    return KpiApp(bolt, service, client, executor, workers)
