"""Charts for Teams cards: Adaptive Cards show images by URL only, and a chart PNG (30-45 KB,
more as a base64 ``data:`` URI) does not fit in a card's 28 KB. So a chart is served by
kpibot itself on ``GET /api/charts?c=<token>``, at ``KPIBOT_PUBLIC_URL``.

The token names the chart (metric, team, period, which of the card's charts) and when it
expires (:data:`TTL`), signed with HMAC-SHA256 under a key derived from the bot's client
secret. The route checks signature and expiry before anything else (401 otherwise, and
nothing is computed); a valid token gets the PNG, drawn from the store at that moment.
Without ``KPIBOT_PUBLIC_URL`` there is no link to give: the card shows the data in words.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from urllib.parse import quote

from bot.errors import KpibotError
from bot.renderers import charts
from bot.reports.cards import MetricCard
from bot.surfaces.http import HttpApp, HttpRequest, HttpResponse

log = logging.getLogger("kpibot.teams")

PATH = "/api/charts"
TTL = 7 * 24 * 3600  # a card stays in the conversation; its chart link lasts a week
MAX_TOKEN = 1024


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ChartLinks:
    def __init__(
        self,
        secret: str,
        public_url: str | None,
        *,
        ttl: int = TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # a key of its own: a chart token never doubles as anything signed with the secret
        self._key = hmac.new(secret.encode(), b"kpibot chart links", hashlib.sha256).digest()
        self.public_url = public_url.rstrip("/") if public_url else None
        self.ttl = ttl
        self.clock = clock

    def token(self, metric: str, team: str, period: str, which: int) -> str:
        payload = json.dumps(
            {"m": metric, "t": team, "p": period, "i": which, "x": int(self.clock()) + self.ttl},
            separators=(",", ":"),
        ).encode()
        body = _b64(payload)
        sig = _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
        return f"{body}.{sig}"

    def url(self, metric: str, team: str, period: str, which: int) -> str | None:
        if not self.public_url:
            return None
        return f"{self.public_url}{PATH}?c={quote(self.token(metric, team, period, which))}"

    def verify(self, token: str) -> tuple[str, str, str, int] | None:
        """(metric, team, period, which chart) of a genuine, unexpired token; else None."""
        if not token or len(token) > MAX_TOKEN or token.count(".") != 1:
            return None
        body, sig = token.split(".")
        want = _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(want, sig):
            return None
        try:
            data = json.loads(_unb64(body))
            found = (str(data["m"]), str(data["t"]), str(data["p"]), int(data["i"]))
            expires = int(data["x"])
        except (ValueError, KeyError, TypeError):
            return None
        return found if expires > self.clock() else None

    @staticmethod
    def _token_of(req: HttpRequest) -> str:
        return (req.query.get("c") or [""])[0]

    def install(self, http_app: HttpApp, card: Callable[[str, str, str], MetricCard]) -> None:
        """Serve the charts; ``card`` computes (metric, team, period) -> the metric card."""

        def serve(req: HttpRequest) -> HttpResponse:
            found = self.verify(self._token_of(req))
            if found is None:  # verified already; expired in between
                return HttpResponse.json({"error": "invalid request"}, status=401)
            metric, team, period, which = found
            try:
                c = card(metric, team, period)
            except KpibotError as exc:
                log.info("chart no longer available: %s", exc)
                return HttpResponse.text("this chart is no longer available", 404)
            if which == 0:
                png = charts.trend_png(c)
            elif which == 1 and charts.has_phases(c):
                png = charts.phase_png(c)
            else:
                return HttpResponse.text("no such chart", 404)
            return HttpResponse(
                200,
                png,
                {"Content-Type": "image/png", "Cache-Control": "private, max-age=3600"},
            )

        http_app.add_route(
            "GET", PATH, serve, verify=lambda req: self.verify(self._token_of(req)) is not None
        )
