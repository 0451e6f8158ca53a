"""Bot accounts and ignored paths (METRICS.md, Principles and Aggregation): pure functions."""

import pytest

from bot.metrics.patterns import BotFilter, PathFilter
from bot.settings import DEFAULT_EXCLUDE_AUTHORS, DEFAULT_IGNORE_PATHS, TeamConfig

DEFAULT_BOTS = BotFilter(DEFAULT_EXCLUDE_AUTHORS)


# --- bots ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "login",
    [
        "renovate[bot]",  # `[bot]` suffix
        "some-app[bot]",
        "Some-App[BOT]",  # suffix is case-insensitive
        "dependabot",  # dependabot*
        "Dependabot-Preview",
        "renovate",
        "RENOVATE",  # case-insensitive
        "github-actions",
        "snyk-bot",  # snyk-* (and *-bot)
        "snyk-security",
        "deploy-bot",  # *-bot
        "release-bot-eu",  # *-bot-*
        "ci_bot",  # *_bot
        "CI_Bot_Prod",  # *_bot_*
        "Copilot",
        "copilot-swe-agent",
        "coderabbitai",
    ],
)
def test_default_patterns_are_bots(login):
    assert DEFAULT_BOTS(login) is True


@pytest.mark.parametrize(
    "login",
    [
        "alice",
        "robot",  # no `*-bot`: needs the dash
        "abot",
        "snykbot",  # `snyk-*` needs the dash
        "my-dependabot",  # `dependabot*` is anchored at the start
        "bot-alice",
        "talbot",  # no separator before "bot"
        "abbott_smith",
        "robot_arm",
        "",
    ],
)
def test_people_are_not_bots(login):
    assert DEFAULT_BOTS(login) is False


def test_none_login_is_not_a_bot_unless_provider_says_so():
    assert DEFAULT_BOTS(None) is False
    assert DEFAULT_BOTS(None, provider_says_bot=True) is True


def test_provider_flag_makes_any_login_a_bot():
    assert DEFAULT_BOTS("alice") is False
    assert DEFAULT_BOTS("alice", provider_says_bot=True) is True
    # the cache for "alice" must not leak the provider's answer
    assert DEFAULT_BOTS("alice") is False


def test_bot_suffix_without_patterns():
    bots = BotFilter(())
    assert bots("x[bot]") is True
    assert bots("dependabot") is False  # no patterns at all


def test_team_exclude_authors_are_added_to_the_defaults():
    team = TeamConfig(name="t", exclude_authors=("ci-user", "release-?"))
    bots = BotFilter(team.bot_patterns)
    assert bots("dependabot")  # a default still applies
    assert bots("CI-User")  # team pattern, case-insensitive
    assert bots("release-1")  # `?` is exactly one character
    assert not bots("release-12")
    assert not bots("release-")
    assert not bots("ci-user2")  # whole-login match


def test_square_brackets_are_literal_in_author_patterns():
    bots = BotFilter(("svc[ci]", "x.y"))
    assert bots("svc[ci]")
    assert bots("SVC[CI]")
    # would match if `[ci]` were a character class
    assert not bots("svcc")
    assert not bots("svci")
    # `.` is literal too
    assert bots("x.y")
    assert not bots("xzy")


# --- paths ---------------------------------------------------------------------------------

DEFAULT_PATHS = PathFilter(DEFAULT_IGNORE_PATHS)


@pytest.mark.parametrize(
    "path",
    [
        "yarn.lock",  # *.lock
        "web/yarn.lock",  # a pattern without `/` matches the name in any folder
        "poetry.lock",
        "package-lock.json",
        "web/package-lock.json",
        "npm-shrinkwrap.json",
        "pnpm-lock.yaml",
        "go.sum",
        "svc/go.sum",
        "vendor/github.com/x/y.go",
        "node_modules/left-pad/index.js",
        "dist/app.js",
        "dist/a/b/c.js",
        "static/js/app.min.js",
        "src/__snapshots__/a.test.js.snap",
    ],
)
def test_default_ignored_paths(path):
    assert DEFAULT_PATHS(path) is True


@pytest.mark.parametrize(
    "path",
    [
        "src/main.go",
        "yarn.lockfile",  # `*.lock` must match the whole name
        "lock",
        "app.min.jsx",
        "src/vendor.go",
        # `vendor/**` has a `/`, so it is anchored at the repository root (.gitignore rule)
        "src/vendor/x.go",
        "web/dist/app.js",
        "distribution/a.js",
    ],
)
def test_default_kept_paths(path):
    assert DEFAULT_PATHS(path) is False


def test_star_does_not_cross_a_slash():
    f = PathFilter(("docs/*.md",))
    assert f("docs/a.md")
    assert not f("docs/sub/a.md")
    assert not f("x/docs/a.md")  # anchored: contains a `/`


def test_double_star_slash_matches_zero_or_more_folders():
    f = PathFilter(("**/fixtures/*.json", "a/**/b.txt"))
    assert f("fixtures/x.json")  # zero folders
    assert f("t/fixtures/x.json")
    assert f("t/u/fixtures/x.json")
    assert not f("t/fixtures/sub/x.json")  # `*` still does not cross `/`
    assert f("a/b.txt")
    assert f("a/x/b.txt")
    assert f("a/x/y/b.txt")
    assert not f("x/a/b.txt")


def test_name_anywhere_and_folder_patterns():
    f = PathFilter(("*.pb.go", "build/", "/gen", "generated"))
    assert f("api/v1/service.pb.go")
    assert f("service.pb.go")
    assert f("build/out.o")  # a folder anywhere, and what is in it
    assert f("src/build/out.o")
    assert not f("build")  # `build/` only matches a folder
    assert f("gen/x.go")  # leading `/` anchors at the root
    assert not f("src/gen/x.go")
    assert f("generated")  # no slash: a name in any folder (file or folder)
    assert f("a/generated/x.py")
    assert not f("a/generated_x.py")


def test_question_mark_is_one_non_slash_character():
    f = PathFilter(("v?.txt",))
    assert f("v1.txt")
    assert f("d/v2.txt")
    assert not f("v12.txt")
    assert not f("v/.txt")


def test_blank_patterns_are_ignored_and_empty_filter_matches_nothing():
    f = PathFilter(("", "  "))
    assert not f("anything")
    assert not PathFilter(())("yarn.lock")
