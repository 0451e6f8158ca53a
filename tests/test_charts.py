"""Charts pinned through matplotlib's objects (title, labels, bars, target line), not pixels;
drawn with the Agg backend, so no display is needed."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex

from bot.metrics import registry
from bot.metrics.periods import last_complete_month, parse_period
from bot.metrics.registry import Kind, Target
from bot.renderers import charts
from bot.reports.cards import MetricCard, PeriodInfo, SparkPoint, build_card
from tests.demo_org import NOW, load_demo

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_BYTES = 150 * 1024
H, D = 3600.0, 86400.0


@pytest.fixture(scope="module")
def org(tmp_path_factory):
    yield from load_demo(tmp_path_factory.mktemp("charts"))


def week(i: int) -> tuple[str, date, date]:
    start = date(2026, 9, 28).toordinal() + 7 * i
    return f"2026-W{40 + i}", date.fromordinal(start), date.fromordinal(start + 6)


def card(values, ns=None, **kw) -> MetricCard:
    ns = ns or [10] * len(values)
    phases_of = kw.pop("phases_of", lambda i: ())
    points = tuple(
        SparkPoint(week(i)[0], v, n, week(i)[1], week(i)[2], phases=phases_of(i))
        for i, (v, n) in enumerate(zip(values, ns, strict=True))
    )
    base = dict(
        metric="cycle-time",
        name="Cycle time",
        team="payments",
        period=PeriodInfo(
            "2026-W47",
            "week 2026-W47",
            datetime(2026, 11, 16, tzinfo=UTC),
            datetime(2026, 11, 23, tzinfo=UTC),
            "UTC",
        ),
        kind=Kind.DURATION,
        unit="seconds",
        lower_is_better=True,
        n=ns[-1],
        value=values[-1],
        p50=values[-1],
        p75=None,
        p90=None,
        target=Target("<", 2 * D),
        status="on target",
        previous_n=ns[-2],
        previous_value=values[-2],
        trend="flat",
        change=0.0,
        band=None,
        edition=None,
        breakdown=None,
        sparkline=points,
        definition="",
    )
    base.update(kw)
    return MetricCard(**base)


def bars(ax, gid="bar"):
    return [p for p in ax.patches if p.get_gid() == gid]


def test_trend_chart_stands_on_its_own():
    c = card(
        [1.5 * D, None, 2.5 * D, 1.0 * D, 3 * H, 1.8 * D, 2.2 * D, 1.2 * D],
        ns=[10, 0, 8, 3, 12, 9, 7, 11],
    )
    fig = charts.trend_figure(c)
    assert isinstance(fig.canvas, FigureCanvasAgg)  # Agg: no display involved
    (ax,) = fig.axes
    assert ax.get_title(loc="left") == "Cycle time · payments"
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"W{40 + i}" for i in range(8)]
    assert ax.get_ylabel() == "days"
    drawn = bars(ax)
    assert len(drawn) == 8
    (target,) = [line for line in ax.get_lines() if line.get_gid() == "target"]
    assert target.get_label() == "target < 2.0d"
    assert list(target.get_ydata()) == [2.0, 2.0]
    assert target.get_label() in [t.get_text() for t in ax.get_legend().get_texts()]
    # values on the bars, "n" where a period has too few samples, "no data" where none
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["1.5", "no data", "2.5", "1.0\nn = 3", "0.1", "1.8", "2.2", "1.2"]
    # on target blue, off target vermillion and hatched (colour-blind safe), no data grey
    colours = [to_hex(b.get_facecolor()) for b in drawn]
    assert colours[0] == charts.ON_TARGET.lower()
    assert colours[2] == colours[6] == charts.OFF_TARGET.lower()
    assert drawn[2].get_hatch() == "//" and not drawn[0].get_hatch()
    assert colours[1] == charts.GREY.lower()
    assert drawn[3].get_alpha() == 0.5  # few samples: faded
    png = charts.png(fig)
    assert png.startswith(PNG_MAGIC) and len(png) < MAX_BYTES


def test_trend_chart_units_follow_the_kpi():
    cov = card(
        [0.9, 0.96, 0.97],
        kind=Kind.RATIO,
        metric="review-coverage",
        name="Review coverage",
        unit="fraction",
        target=Target(">", 0.95),
        lower_is_better=False,
    )
    ax = charts.trend_figure(cov).axes[0]
    assert ax.get_ylabel() == "percent"
    assert [t.get_text() for t in ax.texts] == ["90%", "96%", "97%"]
    (target,) = [line for line in ax.get_lines() if line.get_gid() == "target"]
    assert target.get_label() == "target > 95%"
    assert list(target.get_ydata()) == [pytest.approx(95.0)] * 2
    size = card(
        [174.5, 320.0],
        kind=Kind.LINES,
        metric="pr-size",
        name="PR size",
        unit="lines",
        target=Target("<", 400),
    )
    ax = charts.trend_figure(size).axes[0]
    assert ax.get_ylabel() == "lines changed"
    assert [t.get_text() for t in ax.texts] == ["175", "320"]


def test_a_period_in_progress_says_so_far_on_the_chart():
    c = card([1.0 * D, 1.5 * D])
    c = MetricCard(
        **{
            **c.__dict__,
            "period": PeriodInfo(
                "2026-W41",
                "week 2026-W41 so far (Oct 5 – Oct 7)",
                datetime(2026, 10, 5, tzinfo=UTC),
                datetime(2026, 10, 7, 12, tzinfo=UTC),
                "UTC",
                in_progress=True,
            ),
        }
    )
    ax = charts.trend_figure(c).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["W40", "W41\nso far"]


def test_rolling_periods_are_named_by_their_days():
    assert charts.period_names(
        [SparkPoint("28d", 1.0, 5, date(2026, 10, 23), date(2026, 11, 19))]
    ) == ["Oct 23–\nNov 19"]
    assert charts.period_names([SparkPoint("2026-10", 1.0, 5, date(2026, 10, 1), None)]) == [
        "Oct 2026"
    ]


def test_phase_chart_stacks_the_phases():
    phases = {"coding": 2 * H, "pickup": 5 * H, "review": 10 * H}
    c = card(
        [17 * H, None, 17 * H, 17 * H],
        ns=[10, 0, 2, 10],
        phases_of=lambda i: tuple((k, None if i == 1 else v) for k, v in phases.items()),
    )
    ax = charts.phase_figure(c).axes[0]
    assert ax.get_title(loc="left") == "Cycle time by phase · payments"
    assert ax.get_ylabel() == "hours"
    for k in phases:
        assert len(bars(ax, f"phase:{k}")) == 4
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(phases)
    # stacked: review starts where coding + pickup end
    review = bars(ax, "phase:review")[0]
    assert review.get_y() == pytest.approx(7.0) and review.get_height() == pytest.approx(10.0)
    assert [t.get_text() for t in ax.texts] == ["17", "no data", "17\nn = 2", "17"]
    with pytest.raises(ValueError):
        charts.phase_figure(card([1.0, 2.0], metric="pr-size"))


def test_dora_chart_has_four_panels_coloured_by_band(org):
    with org.factory() as s:
        eng = org.engine(s, "payments")
        month = last_complete_month(NOW, eng.team.zone)
        cards = [build_card(eng, m, month) for m in registry.DORA]
    fig = charts.dora_figure(cards, "payments", 2023)
    assert fig.get_suptitle() == "DORA keys · payments · 2023 bands"
    assert [ax.get_title(loc="left") for ax in fig.axes] == [
        "Deployment frequency",
        "Lead time for changes",
        "Change failure rate",
        "Time to restore",
    ]
    for ax, c in zip(fig.axes, cards, strict=True):
        drawn = bars(ax)
        assert len(drawn) == 6  # the last six months
        assert [t.get_text() for t in ax.get_xticklabels()][-1] == "Oct 2026"
        for b, p in zip(drawn, c.sparkline[-6:], strict=True):
            want = charts.BAND_COLOURS.get(p.band or "", charts.GREY)
            assert to_hex(b.get_facecolor()) == want.lower()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["elite", "high", "medium", "low", "no data"]
    assert len(charts.png(fig)) < MAX_BYTES


def test_a_chart_for_every_kpi_of_every_demo_team_is_small(org):
    # the time each takes is measured by bench/bench_charts.py, not here
    with org.factory() as s:
        for team in org.config.teams:
            eng = org.engine(s, team.name)
            p = parse_period("28d", team.zone, NOW)
            for spec in registry.METRICS:
                c = build_card(eng, spec.id, p)
                fig = charts.trend_figure(c)
                ax = fig.axes[0]
                assert ax.get_title(loc="left") == f"{spec.name} · {team.name}"
                assert len(bars(ax)) == 8
                png = charts.png(fig)
                assert png.startswith(PNG_MAGIC) and len(png) < MAX_BYTES, spec.id
                if spec.id in ("cycle-time", "lead-time"):
                    assert len(charts.phase_png(c)) < MAX_BYTES
