"""Percentiles and trends (METRICS.md, Aggregation): hand-computed values."""

import pytest

from bot.metrics.stats import median, percentile, summarise, trend


def test_percentile_of_nothing_is_none():
    assert percentile([], 0.5) is None
    assert median([]) is None
    s = summarise([])
    assert (s.n, s.p50, s.p75, s.p90) == (0, None, None, None)


def test_percentile_of_one_value_is_that_value():
    for q in (0.0, 0.5, 0.75, 0.9, 1.0):
        assert percentile([7.0], q) == 7.0
    s = summarise([7.0])
    assert (s.n, s.p50, s.p75, s.p90) == (1, 7.0, 7.0, 7.0)


def test_percentile_linear_interpolation_by_hand():
    v = [1.0, 2.0, 4.0, 8.0]
    # p = q*(n-1) = 0.5*3 = 1.5 -> v[1] + 0.5*(v[2]-v[1]) = 2 + 0.5*2 = 3
    assert percentile(v, 0.5) == 3.0
    # p = 0.75*3 = 2.25 -> v[2] + 0.25*(v[3]-v[2]) = 4 + 0.25*4 = 5
    assert percentile(v, 0.75) == 5.0
    # p = 0.9*3 = 2.7 -> 4 + 0.7*4 = 6.8
    assert percentile(v, 0.9) == pytest.approx(6.8)
    assert percentile(v, 0.0) == 1.0
    assert percentile(v, 1.0) == 8.0


def test_median_even_and_odd():
    assert median([5.0, 1.0, 3.0]) == 3.0  # sorted 1,3,5 -> p = 1 -> 3
    assert median([10.0, 20.0]) == 15.0  # p = 0.5 -> 10 + 0.5*10
    assert median(x for x in [4.0, 1.0, 3.0, 2.0]) == 2.5  # generator input is sorted first


def test_summarise_sorts_and_reports_p50_p75_p90():
    s = summarise([10.0, 0.0, 30.0, 20.0, 40.0])
    # sorted 0,10,20,30,40 (n=5): p50 at 2 -> 20; p75 at 3 -> 30; p90 at 3.6 -> 30+0.6*10 = 36
    assert s.n == 5
    assert s.p50 == 20.0
    assert s.p75 == 30.0
    assert s.p90 == pytest.approx(36.0)


# --- trend ---------------------------------------------------------------------------------


def test_trend_better_for_lower_is_better_drop():
    # (8 - 10) / 10 = -20 % and both n >= 5: a drop is better when lower is better
    t = trend(8.0, 5, 10.0, 5, lower_is_better=True)
    assert t.direction == "better"
    assert t.change == pytest.approx(-0.2)


def test_trend_worse_for_lower_is_better_rise():
    t = trend(12.0, 6, 10.0, 9, lower_is_better=True)
    assert t.direction == "worse"
    assert t.change == pytest.approx(0.2)


def test_trend_higher_is_better():
    assert trend(0.9, 5, 0.8, 5, lower_is_better=False).direction == "better"  # +12.5 %
    assert trend(0.7, 5, 0.8, 5, lower_is_better=False).direction == "worse"  # -12.5 %


def test_trend_exactly_ten_percent_counts():
    # (9 - 10) / 10 = -0.1: "at least 10 %" -> a change
    t = trend(9.0, 5, 10.0, 5, lower_is_better=True)
    assert t.change == -0.1
    assert t.direction == "better"
    t = trend(11.0, 5, 10.0, 5, lower_is_better=True)
    assert t.direction == "worse"


def test_trend_under_ten_percent_is_flat():
    # (9.5 - 10) / 10 = -5 %
    t = trend(9.5, 50, 10.0, 50, lower_is_better=True)
    assert t.direction == "flat"
    assert t.change == pytest.approx(-0.05)
    assert trend(10.0, 5, 10.0, 5, lower_is_better=False).direction == "flat"


@pytest.mark.parametrize("n_cur,n_prev", [(4, 5), (5, 4), (0, 10), (10, 0), (1, 1)])
def test_trend_needs_five_in_both_periods(n_cur, n_prev):
    t = trend(1.0, n_cur, 100.0, n_prev, lower_is_better=True)
    assert t.direction == "not enough data"
    assert t.change == pytest.approx(-0.99)  # (1 - 100) / 100, still reported


def test_trend_missing_values_are_not_enough_data():
    t = trend(None, 5, 10.0, 5, lower_is_better=True)
    assert (t.direction, t.change) == ("not enough data", None)
    t = trend(10.0, 5, None, 5, lower_is_better=True)
    assert (t.direction, t.change) == ("not enough data", None)


def test_trend_relative_to_absolute_previous():
    # (-1 - -2) / |-2| = +0.5
    t = trend(-1.0, 5, -2.0, 5, lower_is_better=False)
    assert t.change == 0.5
    assert t.direction == "better"


def test_trend_from_zero():
    # previous 0, current 0: no change
    t = trend(0.0, 5, 0.0, 5, lower_is_better=True)
    assert (t.direction, t.change) == ("flat", 0.0)
    # previous 0, current > 0: no relative change, but it went up
    t = trend(0.2, 5, 0.0, 5, lower_is_better=True)
    assert (t.direction, t.change) == ("worse", None)
    t = trend(0.2, 5, 0.0, 5, lower_is_better=False)
    assert (t.direction, t.change) == ("better", None)


# --- rate KPIs: percentage points ------------------------------------------------------------


def test_rate_trend_is_the_difference_in_points():
    # review coverage 60 % -> 92 %: +32 points (not +53 % relative), better
    t = trend(0.92, 50, 0.60, 50, lower_is_better=False, points=True)
    assert t.points is True
    assert t.change == pytest.approx(0.32)
    assert t.direction == "better"


def test_rate_trend_needs_five_points():
    # 90 % -> 95 %: exactly 5 points is a change (at least 5), despite float noise
    assert trend(0.95, 20, 0.90, 20, lower_is_better=False, points=True).direction == "better"
    # 90 % -> 94 %: 4 points is flat, although it is +4.4 % relative
    t = trend(0.94, 20, 0.90, 20, lower_is_better=False, points=True)
    assert t.direction == "flat"
    # a 10 % -> 12 % failure rate is +20 % relative, but only 2 points: flat
    assert trend(0.12, 20, 0.10, 20, lower_is_better=True, points=True).direction == "flat"
    # 10 % -> 16 %: 6 points worse for a lower-is-better rate
    assert trend(0.16, 20, 0.10, 20, lower_is_better=True, points=True).direction == "worse"


def test_rate_trend_from_zero_is_a_difference():
    t = trend(0.08, 20, 0.0, 20, lower_is_better=True, points=True)
    assert (t.direction, t.change) == ("worse", pytest.approx(0.08))


def test_registry_rate_kpis_trend_in_points():
    from bot.metrics.registry import BY_ID

    rates = {m for m, spec in BY_ID.items() if spec.trend_in_points}
    assert rates == {"review-coverage", "change-failure-rate", "predictability", "scope-creep"}
