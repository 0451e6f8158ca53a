"""Provider timestamps to naive UTC, the one parser every source uses."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.sources.timestamps import iso_utc


class Bad(ValueError):
    pass


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-05-15T15:20:33Z", datetime(2019, 5, 15, 15, 20, 33)),
        ("2019-05-15T17:20:33+02:00", datetime(2019, 5, 15, 15, 20, 33)),
        ("2016-04-11T07:29:03.294-0700", datetime(2016, 4, 11, 14, 29, 3)),
        ("2026-11-20T09:00:00", datetime(2026, 11, 20, 9, 0, 0)),  # no offset: UTC
    ],
)
def test_offsets_become_naive_utc_at_second_precision(text, expected):
    assert iso_utc(text, "x", Bad) == expected


def test_fractions_are_kept_when_asked():
    got = iso_utc("2016-04-11T07:29:03.294-07:00", "x", Bad, keep_fraction=True)
    assert got == datetime(2016, 4, 11, 14, 29, 3, 294000)


@pytest.mark.parametrize("value", [None, 17, "yesterday", "2026-13-01T00:00:00Z"])
def test_bad_values_raise_the_callers_error_naming_the_field(value):
    with pytest.raises(Bad, match=r"^incident 7\.created_at: "):
        iso_utc(value, "incident 7.created_at", Bad)
