"""The Teams app package (``kpibot teams package``): a zip of ``manifest.json`` (Teams app
manifest schema :data:`MANIFEST_VERSION`), a 192×192 colour icon and a 32×32 outline icon.

The bot's command menu is the grammar's own list (:data:`bot.chat.grammar.MENU`), so the
menu and the parser cannot drift apart. The icons are drawn here with Pillow (matplotlib's
own image library): three rising bars, white on the accent colour, and the same bars white on
a transparent background for the outline icon Teams shows in its app bar.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from bot.chat.grammar import MENU
from bot.errors import KpibotError

MANIFEST_VERSION = "1.29"  # the current generally available Teams app manifest schema
SCHEMA_URL = (
    f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/"
    "MicrosoftTeams.schema.json"
)
ACCENT = "#2F5597"
COLOR_ICON = "color.png"
OUTLINE_ICON = "outline.png"
DEFAULT_WEBSITE = "https://kpibot.example.com"
SCOPES = ("personal", "team", "groupChat")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def app_version() -> str:
    try:
        return version("kpibot")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0.1.0"


def check_app_id(app_id: str | None) -> str:
    """``TEAMS_APP_ID`` as the manifest needs it (a GUID), else one clear line."""
    if not app_id:
        raise KpibotError(
            "TEAMS_APP_ID is not set: register the bot in the Teams Developer Portal "
            "(https://dev.teams.microsoft.com/bots) and set TEAMS_APP_ID to its bot id"
        )
    if not _GUID.match(app_id):
        raise KpibotError(
            f"TEAMS_APP_ID '{app_id[:40]}' is not a bot id: the Developer Portal shows it as a "
            "GUID such as 00000000-0000-0000-0000-000000000000"
        )
    return app_id


def check_website(url: str) -> str:
    if not re.match(r"^https://[^\s/]+", url):
        raise KpibotError(f"--website must be an https:// address, not '{url[:60]}'")
    return url.rstrip("/")


def command_list() -> list[dict[str, str]]:
    """The bot's command menu: each command of the grammar with its arguments."""
    return [
        {
            "title": u.words,
            "description": f"{u.args} · {u.description}" if u.args else u.description,
        }
        for u in MENU
    ]


def manifest(
    app_id: str, website: str = DEFAULT_WEBSITE, developer: str = "kpibot"
) -> dict[str, Any]:
    site = check_website(website)
    return {
        "$schema": SCHEMA_URL,
        "manifestVersion": MANIFEST_VERSION,
        "version": app_version(),
        "id": check_app_id(app_id),
        "developer": {
            "name": developer[:32],
            "websiteUrl": site,
            "privacyUrl": f"{site}/privacy",
            "termsOfUseUrl": f"{site}/terms",
        },
        "name": {"short": "kpibot", "full": "kpibot: delivery KPIs for engineering teams"},
        "description": {
            "short": "Your team's delivery KPIs: cycle time, reviews, DORA, predictability",
            "full": (
                "kpibot answers with your engineering team's delivery KPIs where you work: "
                "cycle time and its phases, PR size, first review time, review coverage, "
                "merge frequency, the four DORA keys and delivery predictability, with sample "
                "sizes, targets, trends and DORA bands. Teams only, never individuals. "
                "Mention @kpibot with a command in a channel or group chat, or type it in the "
                "personal chat; @kpibot help lists every command and metric."
            ),
        },
        "icons": {"color": COLOR_ICON, "outline": OUTLINE_ICON},
        "accentColor": ACCENT,
        "bots": [
            {
                "botId": app_id,
                "scopes": list(SCOPES),
                "supportsFiles": False,
                "isNotificationOnly": False,
                "commandLists": [{"scopes": list(SCOPES), "commands": command_list()}],
            }
        ],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [],
    }


def _bars(draw: ImageDraw.ImageDraw, size: int, fill: str) -> None:
    """Three rising bars on a baseline, filling the middle of a ``size`` square."""
    margin = size * 0.22
    width = (size - 2 * margin) / 5
    base = size - margin
    for i, height in enumerate((0.35, 0.6, 0.9)):
        left = margin + i * 2 * width
        top = base - height * (size - 2 * margin)
        draw.rectangle((left, top, left + width, base), fill=fill)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def color_icon() -> bytes:
    """192×192: white bars on the accent colour, full bleed (Teams rounds the corners)."""
    image = Image.new("RGBA", (192, 192), ACCENT)
    _bars(ImageDraw.Draw(image), 192, "#FFFFFF")
    return _png(image)


def outline_icon() -> bytes:
    """32×32: white bars on a transparent background."""
    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    _bars(ImageDraw.Draw(image), 32, "#FFFFFF")
    return _png(image)


def write_package(
    path: Path, app_id: str | None, website: str = DEFAULT_WEBSITE, developer: str = "kpibot"
) -> dict[str, Any]:
    """Write the app package to ``path``; returns its manifest."""
    doc = manifest(check_app_id(app_id), website, developer)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        z.writestr(COLOR_ICON, color_icon())
        z.writestr(OUTLINE_ICON, outline_icon())
    return doc
