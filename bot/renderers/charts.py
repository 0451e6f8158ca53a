"""PNG charts that stand on their own, drawn with matplotlib's Agg backend (no display).

- :func:`trend_figure`: a KPI's last periods as bars, with the title (KPI · team), the period
  names on the x axis, the unit on the y axis, the target as a labelled line, the value on
  each bar, on-target and off-target colours from the Okabe–Ito palette (readable with every
  common colour-vision deficiency; off-target bars are also hatched), and ``n`` on the bars of
  periods with too few samples for a trend;
- :func:`phase_figure`: cycle or lead time split into its phases, stacked, per period;
- :func:`dora_figure`: the four DORA keys over the last six periods, each bar coloured and
  named by its band.

Figures are built with matplotlib's object API (``Figure`` + ``FigureCanvasAgg``), never
``pyplot``: no global state, so report workers may draw in threads. matplotlib is imported
when a chart is drawn, so commands that draw none do not pay for it. Every number and label
is formatted by ``bot.renderers.format``.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.metrics.registry import Kind
from bot.metrics.stats import TREND_MIN_N
from bot.renderers import format as fmt
from bot.reports.cards import MetricCard, SparkPoint

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Okabe & Ito, "Color Universal Design" (2008)
BLUE, ORANGE, SKY, GREEN, YELLOW, NAVY, VERMILLION, PURPLE = (
    "#0072B2",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
)
GREY = "#BBBBBB"
INK = "#222222"
ON_TARGET, OFF_TARGET = BLUE, VERMILLION
PHASE_COLOURS = {"coding": BLUE, "pickup": ORANGE, "review": GREEN, "deploy": PURPLE}
BAND_COLOURS = {"elite": GREEN, "high": SKY, "medium": ORANGE, "low": VERMILLION}
DORA_PERIODS = 6
LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "pad": 1.0}

WIDTH, HEIGHT, DPI = 8.0, 4.0, 100  # 800 x 400 pixels


def _figure(width: float = WIDTH, height: float = HEIGHT) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # fixed margins: the constrained layout engine would cost more than drawing the chart
    fig = Figure(figsize=(width, height), dpi=DPI)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.2)
    FigureCanvasAgg(fig)
    return fig


def warm_up() -> None:
    """Import matplotlib and load its fonts now (half a second to a second, once per
    process), so that the first chart a long-running process draws is not the slow one."""
    fig = _figure(1.0, 1.0)
    fig.add_subplot().set_title("warm-up")
    png(fig)


def warm_up_in_background() -> threading.Thread:
    thread = threading.Thread(target=warm_up, name="chart-warm-up", daemon=True)
    thread.start()
    return thread


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes (8-bit palette-free RGBA, no metadata that changes per run)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _style(ax: Axes) -> None:
    from matplotlib.ticker import MaxNLocator

    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.tick_params(axis="x", length=0)
    ax.tick_params(labelsize=8)
    ax.yaxis.grid(True, color="#EEEEEE", linewidth=0.8)
    ax.set_axisbelow(True)


def period_names(points: Sequence[SparkPoint], in_progress: bool = False) -> list[str]:
    """The x axis: each period's name, the last marked "so far" while it is in progress."""
    names = [fmt.axis_period(p.label, p.first_day, p.last_day) for p in points]
    if in_progress and names:
        names[-1] += "\nso far"
    return names


def _on_target(card: MetricCard, v: float | None) -> bool | None:
    return None if v is None else card.target.met_by(v)


def trend_figure(card: MetricCard) -> Figure:
    """The card's last periods (its sparkline) as a bar chart; see the module's docstring."""
    from matplotlib.patches import Patch

    points = card.sparkline
    values = [p.value for p in points]
    scale, unit = fmt.axis_unit(card.kind, [*values, card.target.value])
    fig = _figure()
    ax = fig.add_subplot()
    _style(ax)
    names = period_names(points, card.period.in_progress)
    heights = [0.0 if v is None else v / scale for v in values]
    colours = []
    hatches = []
    for v in values:
        ok = _on_target(card, v)
        colours.append(GREY if ok is None else ON_TARGET if ok else OFF_TARGET)
        hatches.append("//" if ok is False else "")
    bars = ax.bar(names, heights, color=colours, hatch=hatches, edgecolor="white", width=0.7)
    for bar, p in zip(bars, points, strict=True):
        bar.set_gid("bar")
        if p.value is not None and p.n < TREND_MIN_N:
            bar.set_alpha(0.5)
    labels = []
    for p in points:
        if p.value is None:
            labels.append("no data")
        elif p.n < TREND_MIN_N:
            labels.append(f"{fmt.scaled(card.kind, p.value, scale)}\nn = {p.n}")
        else:
            labels.append(fmt.scaled(card.kind, p.value, scale))
    for t in ax.bar_label(bars, labels=labels, padding=2, fontsize=8, color=INK):
        t.set_bbox(LABEL_BOX)  # readable where a label meets the target line
    target = card.target.value / scale
    target_text = f"target {fmt.target(card.kind, card.target)}"
    ax.axhline(target, color=INK, linestyle="--", linewidth=1.2, label=target_text, gid="target")
    top = max([*heights, target, 0.0]) or 1.0
    ax.set_ylim(0, top * 1.22)
    ax.set_ylabel(unit)
    ax.set_title(f"{card.name} · {card.team}", fontsize=12, loc="left", fontweight="bold")
    ax.set_xlabel(
        fmt.with_basis(
            card,
            ("p50 per period, " if card.p50 is not None else "")
            + f"last {len(points)} periods · faded bars: fewer than {TREND_MIN_N} samples",
        ),
        fontsize=8,
        color="#555555",
    )
    handles = [
        Patch(facecolor=ON_TARGET, label="on target"),
        Patch(facecolor=OFF_TARGET, hatch="//", edgecolor="white", label="off target"),
        *ax.get_lines(),
    ]
    ax.legend(handles=handles, fontsize=8, frameon=False, loc="upper left", ncols=3)
    return fig


def phase_figure(card: MetricCard) -> Figure:
    """Cycle or lead time per period as stacked bars of its phases (p50 of each phase)."""
    points = card.sparkline
    if not points or not points[0].phases:
        raise ValueError(f"{card.metric} has no phases")
    keys = [k for k, _ in points[0].phases]
    per_phase = {k: [dict(p.phases).get(k) for p in points] for k in keys}
    totals = [sum(v or 0.0 for v in dict(p.phases).values()) for p in points]
    scale, unit = fmt.axis_unit(Kind.DURATION, totals)
    fig = _figure()
    ax = fig.add_subplot()
    _style(ax)
    names = period_names(points, card.period.in_progress)
    bottom = [0.0] * len(points)
    for k in keys:
        heights = [(v or 0.0) / scale for v in per_phase[k]]
        bars = ax.bar(
            names,
            heights,
            bottom=bottom,
            color=PHASE_COLOURS[k],
            label=k,
            width=0.7,
            edgecolor="white",
        )
        for bar in bars:
            bar.set_gid(f"phase:{k}")
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    for x, (total, p) in enumerate(zip(bottom, points, strict=True)):
        text = "no data" if p.value is None else fmt.scaled(Kind.DURATION, total * scale, scale)
        if p.value is not None and p.n < TREND_MIN_N:
            text += f"\nn = {p.n}"
        ax.annotate(
            text,
            (x, total),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
            color=INK,
        )
    ax.set_ylim(0, (max(bottom) or 1.0) * 1.22)
    ax.set_ylabel(unit)
    ax.set_title(f"{card.name} by phase · {card.team}", fontsize=12, loc="left", fontweight="bold")
    ax.set_xlabel(
        fmt.with_basis(card, "sum of each phase's p50 per period"), fontsize=8, color="#555555"
    )
    ax.legend(fontsize=8, frameon=False, loc="upper left", ncols=len(keys))
    return fig


def dora_figure(cards: Sequence[MetricCard], team: str, edition: int | None) -> Figure:
    """The four DORA keys over their last six periods, one panel each, bars in band colours."""
    from matplotlib.patches import Patch

    fig = _figure(WIDTH, 5.6)
    axes = fig.subplots(2, 2)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.88, bottom=0.14, hspace=0.45, wspace=0.22)
    for ax, card in zip(axes.flat, cards, strict=False):
        _style(ax)
        points = card.sparkline[-DORA_PERIODS:]
        values = [p.value for p in points]
        scale, unit = fmt.axis_unit(card.kind, values)
        heights = [0.0 if v is None else v / scale for v in values]
        colours = [BAND_COLOURS.get(p.band or "", GREY) for p in points]
        bars = ax.bar(
            period_names(points, card.period.in_progress), heights, color=colours, width=0.7
        )
        for bar in bars:
            bar.set_gid("bar")
        labels = [
            "no data" if p.value is None else fmt.scaled(card.kind, p.value, scale) for p in points
        ]
        ax.bar_label(bars, labels=labels, padding=2, fontsize=7, color=INK)
        ax.set_ylim(0, (max(heights) or 1.0) * 1.25)
        ax.set_yticks([])  # the values are on the bars; no tick labels to draw (speed)
        ax.spines["left"].set_visible(False)
        ax.set_title(card.name, fontsize=10, loc="left")
        ax.set_ylabel(unit, fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    title = f"DORA keys · {team}" + (f" · {edition} bands" if edition else "")
    fig.suptitle(title, fontsize=12, fontweight="bold", x=0.01, ha="left")
    fig.legend(
        handles=[Patch(facecolor=c, label=b) for b, c in BAND_COLOURS.items()]
        + [Patch(facecolor=GREY, label="no data")],
        loc="lower center",
        ncols=5,
        fontsize=8,
        frameon=False,
    )
    return fig


def trend_png(card: MetricCard) -> bytes:
    return png(trend_figure(card))


def phase_png(card: MetricCard) -> bytes:
    return png(phase_figure(card))


def dora_png(cards: Sequence[MetricCard], team: str, edition: int | None) -> bytes:
    return png(dora_figure(cards, team, edition))


@dataclass(frozen=True)
class Upload:
    """One chart as a file to post: what every chat surface uploads."""

    filename: str
    title: str
    alt: str  # alt text, at most 1,000 characters (Slack's limit)
    png: bytes


def has_phases(card: MetricCard) -> bool:
    """Whether the card gets a phase chart beside its trend (cycle and lead time)."""
    return bool(card.sparkline and card.sparkline[0].phases)


def card_uploads(card: MetricCard) -> list[Upload]:
    """The charts of a card: its trend, and for cycle and lead time their phases too."""
    out = [
        Upload(
            f"{card.metric}-{card.team}.png",
            f"{card.name} · {card.team}",
            alt_text(card)[:1000],
            trend_png(card),
        )
    ]
    if has_phases(card):
        out.append(
            Upload(
                f"{card.metric}-phases-{card.team}.png",
                f"{card.name} by phase · {card.team}",
                f"{card.name} of {card.team} per period, split into "
                + ", ".join(k for k, _ in card.sparkline[0].phases),
                phase_png(card),
            )
        )
    return out


def dora_upload(cards: Sequence[MetricCard], team: str, edition: int | None) -> Upload:
    parts = []
    for c in cards:
        months = ", ".join(
            f"{p.label} {fmt.value(c.kind, p.value)}" + (f" {p.band}" if p.band else "")
            for p in c.sparkline[-DORA_PERIODS:]
        )
        parts.append(f"{c.name}: {months}")
    return Upload(
        f"dora-{team}.png",
        f"DORA keys · {team}",
        ("DORA keys by period · " + "; ".join(parts))[:1000],
        dora_png(cards, team, edition),
    )


def alt_text(card: MetricCard) -> str:
    """What the trend chart shows, in words (alt text and the upload's comment)."""
    parts = " · ".join(f"{p.label} {fmt.value(card.kind, p.value)}" for p in card.sparkline)
    return (
        f"{card.name} · {card.team}, last {len(card.sparkline)} periods "
        f"(target {fmt.target(card.kind, card.target)}): {parts}"
    )
