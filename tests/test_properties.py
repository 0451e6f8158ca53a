"""Property tests: timeline phases and percentiles (METRICS.md)."""

import math
import statistics
from datetime import datetime, timedelta
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.metrics.patterns import PathFilter
from bot.metrics.stats import percentile
from bot.metrics.timeline import PRFacts, timeline
from bot.store.derive import Graph

FAST = settings(max_examples=300, deadline=None)

# second precision, as the store keeps them
instants = st.integers(min_value=0, max_value=400 * 86400).map(
    lambda s: datetime(2026, 1, 1) + timedelta(seconds=s)
)
maybe = st.none() | instants


@FAST
@given(
    created=instants,
    merged=instants,
    ready=maybe,
    first_commit=maybe,
    first_review=maybe,
    deployed=maybe,
)
def test_phases_are_never_negative_and_sum_to_cycle_time(
    created, merged, ready, first_commit, first_review, deployed
):
    tl = timeline(
        PRFacts(
            1,
            1,
            1,
            "t",
            "a",
            created,
            merged,
            ready=ready,
            first_commit=first_commit,
            first_review=first_review,
            deployed=deployed,
        )
    )
    assert tl.coding >= 0 and tl.pickup >= 0 and tl.review >= 0
    assert tl.cycle >= 0
    assert tl.coding + tl.pickup + tl.review == tl.cycle  # exact: whole seconds
    assert tl.first_commit <= tl.ready <= tl.merged
    if first_review is None:
        assert not tl.reviewed and tl.review == 0
    else:
        assert tl.first_review is not None and tl.ready <= tl.first_review <= tl.merged
    if deployed is None:
        assert tl.deploy is None and tl.lead is None
    else:
        assert tl.deploy is not None and tl.deploy >= 0
        assert tl.lead == tl.cycle + tl.deploy


@FAST
@given(created=instants, hours=st.lists(st.integers(0, 1000), min_size=4, max_size=4))
def test_ordered_timestamps_give_the_plain_differences(created, hours):
    """With first commit <= created <= ready <= first review <= merged, no clipping happens."""
    back, to_ready, to_review, to_merge = (timedelta(hours=h) for h in hours)
    first = created - back
    ready = created + to_ready
    review = ready + to_review
    merged = review + to_merge
    tl = timeline(
        PRFacts(
            1, 1, 1, "t", "a", created, merged, ready=ready, first_commit=first, first_review=review
        )
    )
    assert tl.coding == (back + to_ready).total_seconds()
    assert tl.pickup == to_review.total_seconds()
    assert tl.review == to_merge.total_seconds()


def reference_percentile(values: list[float], q: Fraction) -> Fraction:
    """METRICS.md's rule in exact arithmetic: p = q(n-1); v[floor p] + frac * (v[ceil p] - ...)."""
    v = sorted(Fraction(x) for x in values)
    p = q * (len(v) - 1)
    lo = p.numerator // p.denominator
    hi = lo if p == lo else lo + 1
    return v[lo] + (p - lo) * (v[hi] - v[lo])


values_lists = st.lists(
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=60,
)


@FAST
@given(values=values_lists, q=st.fractions(min_value=0, max_value=1, max_denominator=1000))
def test_percentile_matches_an_exact_reference(values, q):
    got = percentile(sorted(values), float(q))
    want = float(reference_percentile(values, Fraction(float(q))))
    scale = max(abs(x) for x in values)
    assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9 * scale + 1e-12)
    assert min(values) <= got <= max(values)


@FAST
@given(values=values_lists.filter(lambda v: len(v) >= 2), n=st.integers(2, 20))
def test_percentile_matches_statistics_quantiles_inclusive(values, n):
    """statistics.quantiles(method='inclusive') cuts at q = i/n with the same interpolation."""
    cuts = statistics.quantiles(values, n=n, method="inclusive")
    s = sorted(values)
    scale = max(abs(x) for x in values)
    for i, want in enumerate(cuts, 1):
        got = percentile(s, i / n)
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9 * scale + 1e-12)


@FAST
@given(values=values_lists, q1=st.floats(0, 1), q2=st.floats(0, 1))
def test_percentile_is_monotonic_in_q(values, q1, q2):
    s = sorted(values)
    lo, hi = sorted((q1, q2))
    scale = max(abs(x) for x in values)
    assert percentile(s, lo) <= percentile(s, hi) + 1e-9 * scale
    assert percentile(s, 0.0) == s[0]
    assert percentile(s, 1.0) == s[-1]


names = st.text(alphabet="abcxyz.-_", min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(folders=st.lists(names, max_size=4), name=names)
def test_pattern_without_slash_matches_the_name_in_any_folder(folders, name):
    path = "/".join([*folders, name])
    assert PathFilter((name,))(path)
    assert PathFilter(("*",))(path)
    # a pattern with a `/` is anchored at the root
    anchored = PathFilter((f"/{name}",))
    assert anchored(path) == (not folders or folders[0] == name)


@st.composite
def dags(draw):
    """A random commit graph: commit i has up to two parents among commits < i."""
    n = draw(st.integers(1, 25))
    parents: dict[str, list[str]] = {}
    for i in range(n):
        k = draw(st.integers(0, min(i, 2)))
        ps = draw(st.lists(st.integers(0, i - 1), min_size=k, max_size=k, unique=True)) if k else []
        parents[f"c{i}"] = [f"c{p}" for p in ps]
    gen: dict[str, int] = {}
    for i in range(n):  # parents come first
        sha = f"c{i}"
        gen[sha] = 1 + max((gen[p] for p in parents[sha]), default=0)
    return Graph(parents, dict.fromkeys(parents), gen), n


def naive_reachable(g: Graph, head: str) -> set[str]:
    out, stack = set(), [head]
    while stack:
        s = stack.pop()
        if s not in out:
            out.add(s)
            stack.extend(g.parents[s])
    return out


@settings(max_examples=200, deadline=None)
@given(data=st.data(), dag=dags())
def test_graph_difference_and_ancestry_match_a_naive_walk(data, dag):
    g, n = dag
    head = f"c{data.draw(st.integers(0, n - 1))}"
    base = f"c{data.draw(st.integers(0, n - 1))}"
    assert g.difference(head, base) == naive_reachable(g, head) - naive_reachable(g, base)
    assert g.reachable(head) == naive_reachable(g, head)
    assert g.is_strict_ancestor(base, head) == (base != head and base in naive_reachable(g, head))
