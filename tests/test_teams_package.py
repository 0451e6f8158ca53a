"""``kpibot teams package``: the zip Teams takes in 'Upload an app', checked against the
official Teams app manifest schema (vendored with its licence in tests/data/teams-manifest)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import jsonschema
import pytest
from PIL import Image

from bot.chat import grammar
from bot.surfaces.cli import main
from bot.teams import package
from tests.fakes.teams import APP_ID

SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "teams-manifest" / "MicrosoftTeams.schema.json").read_text(
        encoding="utf-8"
    )
)


def _run(monkeypatch, tmp_path: Path, *args: str, app_id: str | None = APP_ID) -> int:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    if app_id is None:
        monkeypatch.delenv("TEAMS_APP_ID", raising=False)
    else:
        monkeypatch.setenv("TEAMS_APP_ID", app_id)
    return main(["teams", "package", *args])


def test_package_holds_a_valid_manifest_the_grammars_commands_and_both_icons(
    monkeypatch, tmp_path, capsys
):
    out = tmp_path / "kpibot-teams.zip"
    assert _run(monkeypatch, tmp_path) == 0
    assert f"wrote {out.name}" in capsys.readouterr().out
    with zipfile.ZipFile(out) as z:
        assert sorted(z.namelist()) == ["color.png", "manifest.json", "outline.png"]
        doc = json.loads(z.read("manifest.json"))
        color = Image.open(io.BytesIO(z.read("color.png")))
        outline = Image.open(io.BytesIO(z.read("outline.png")))

    errors = list(jsonschema.Draft4Validator(SCHEMA).iter_errors(doc))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]
    assert doc["manifestVersion"] == SCHEMA["properties"]["manifestVersion"]["const"] == "1.29"
    assert doc["$schema"].endswith("/teams/v1.29/MicrosoftTeams.schema.json")
    assert doc["id"] == APP_ID
    (bot,) = doc["bots"]
    assert bot["botId"] == APP_ID
    assert sorted(bot["scopes"]) == ["groupChat", "personal", "team"]
    (commands,) = bot["commandLists"]
    assert sorted(commands["scopes"]) == sorted(bot["scopes"])
    titles = [c["title"] for c in commands["commands"]]
    assert titles == [u.words for u in grammar.MENU]
    for usage in grammar.COMMANDS:  # every entry, with its required words, parses
        required = [a.split("|")[0] for a in re.sub(r"\[[^]]*\]", "", usage.args).split()]
        text = " ".join([usage.words, *required]).replace("<team>", "payments")
        text = text.replace("<kpi>", "cfr")
        assert grammar.parse(text, ["payments"]).kind != "help"
    assert doc["icons"] == {"color": "color.png", "outline": "outline.png"}

    assert color.size == (192, 192) and outline.size == (32, 32)
    assert color.getpixel((0, 0))[3] == 255  # full colour, opaque
    rgba = outline.convert("RGBA")
    pixels = [rgba.getpixel((x, y)) for x in range(32) for y in range(32)]
    assert rgba.getpixel((0, 0))[3] == 0  # transparent background
    drawn = [p for p in pixels if p[3] > 0]
    assert drawn and all(p[:3] == (255, 255, 255) for p in drawn)  # white only


def test_out_names_the_file(monkeypatch, tmp_path):
    assert _run(monkeypatch, tmp_path, "--out", "app.zip", "--website", "https://kpi.acme.io/") == 0
    with zipfile.ZipFile(tmp_path / "app.zip") as z:
        developer = json.loads(z.read("manifest.json"))["developer"]
    assert developer["websiteUrl"] == "https://kpi.acme.io"
    assert developer["privacyUrl"] == "https://kpi.acme.io/privacy"


@pytest.mark.parametrize(
    ("app_id", "args", "message"),
    [
        (None, (), "TEAMS_APP_ID is not set"),
        ("not-a-guid", (), "TEAMS_APP_ID 'not-a-guid' is not a bot id"),
        (APP_ID, ("--website", "http://plain.example"), "--website must be an https:// address"),
        (APP_ID, ("--out", "missing-dir/app.zip"), "name a .zip file in an existing folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    monkeypatch, tmp_path, capsys, app_id, args, message
):
    assert _run(monkeypatch, tmp_path, *args, app_id=app_id) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "kpibot-teams.zip").exists()


def test_the_menu_fits_teams_limits():
    assert len(grammar.MENU) <= 12  # Teams shows at most 12 commands per scope
    for entry in package.command_list():
        assert len(entry["title"]) <= 32 and len(entry["description"]) <= 128
