"""Render ``docs/results.md`` and the README's results block from the benchmark records alone.

    python benchmarks/report.py            # rewrite both from benchmarks/records/*.jsonl
    python benchmarks/report.py --check    # exit 1 if either file differs from what the records give

The rows (:class:`benchmarks.records.Row`) are grouped by suite and experiment and pivoted into one
table per experiment (a line per method, env, setting and seed; a column per metric). Two tables are
declared here as data: :data:`HEADLINES` (the README's compact table, with the papers' published
figures beside ours) and :data:`TARGETS` (each "Must show" target of the issues, with the figure
reached and whether it is met). The only numbers typed here are the papers' figures and the
targets' thresholds.

When a suite was re-run, the last row of each (experiment, method, env, setting, seed, metric) wins.
Scores resting on fewer than :data:`MIN_EPISODES` episodes or on one training seed are flagged.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.records import RECORDS, Row, load_rows

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results.md"
README = ROOT / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
DASH = "—"
MIN_EPISODES = 30
#: Suites shown first, in this order; any other suite follows; ``study-*`` suites come last.
SUITE_ORDER = ["ddqn", "cvtc", "conversion", "sdn", "speed", "nc64c", "pipeline"]


# --------------------------------------------------------------------------------------------------
# Selecting and aggregating rows
# --------------------------------------------------------------------------------------------------
def latest(rows: Iterable[Row]) -> list[Row]:
    """The last row of every (suite, experiment, method, env, setting, seed, metric), in first-seen order."""
    keep: dict[tuple, Row] = {}
    for row in rows:
        key = (row.suite, row.experiment, row.method, row.env, json.dumps(row.setting, sort_keys=True), row.seed, row.metric)
        keep.pop(key, None)
        keep[key] = row
    return list(keep.values())


@dataclass(frozen=True)
class Select:
    """Which rows a cell aggregates: exact fields, plus a subset of ``setting`` that must match."""

    suite: str
    experiment: str
    metric: str
    method: str | None = None
    env: str | None = None
    setting: dict[str, Any] = field(default_factory=dict)

    def rows(self, rows: Iterable[Row]) -> list[Row]:
        return [
            r
            for r in rows
            if r.suite == self.suite
            and r.experiment == self.experiment
            and r.metric == self.metric
            and (self.method is None or r.method == self.method)
            and (self.env is None or r.env == self.env)
            and all(r.setting.get(k) == v for k, v in self.setting.items())
        ]


@dataclass
class Agg:
    """Rows of one cell taken together: mean of the rows' values; s.e. of that mean across rows when
    there are several (training seeds), else the single row's s.e.; episodes and seeds summed."""

    rows: list[Row]

    @property
    def value(self) -> float | None:
        return sum(r.value for r in self.rows) / len(self.rows) if self.rows else None

    @property
    def stderr(self) -> float | None:
        if len(self.rows) == 1:
            return self.rows[0].stderr
        if len(self.rows) < 2:
            return None
        mean = self.value or 0.0
        var = sum((r.value - mean) ** 2 for r in self.rows) / (len(self.rows) - 1)
        return math.sqrt(var / len(self.rows))

    @property
    def n(self) -> int | None:
        counts = [r.n for r in self.rows if r.n is not None]
        return sum(counts) if counts else None

    @property
    def seeds(self) -> int | None:
        counts = [r.training_seeds for r in self.rows if r.training_seeds is not None]
        return sum(counts) if counts else None


# --------------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------------
def number(value: float | None, unit: str, digits: int | None = None) -> str:
    """A value in its unit, short: ``98.3 %``, ``2.43×``, ``45.0 KB``, ``0.235 ms``, ``4.4 min``."""
    if value is None:
        return DASH
    if unit in ("fraction", "percent"):
        return f"{100 * value if unit == 'fraction' else value:.{1 if digits is None else digits}f} %"
    if unit in ("x", "ratio"):
        return f"{value:.{(2 if abs(value) < 10 else 1) if digits is None else digits}f}×"
    if unit == "bytes":
        return f"{value / 1000:.1f} KB"
    if unit == "s":
        return f"{value / 60:.1f} min" if value >= 120 else f"{value:.1f} s"
    if unit in ("ms", "us", "uJ"):
        return f"{value:.{3 if digits is None else digits}g} {'µs' if unit == 'us' else 'µJ' if unit == 'uJ' else unit}"
    if unit in ("synops", "steps", "count", "ops", "spikes") or abs(value) >= 1e4:
        return f"{value:,.0f}" if abs(value) < 1e6 else f"{value:.3g}"
    if unit == "steps/s":
        return f"{value:.0f}/s"
    return f"{value:.{1 if digits is None else digits}f}"


def cell(agg: Agg, unit: str | None = None, evidence: bool = True) -> str:
    """``mean ± s.e.`` with, for returns, ``(n ep., k seeds)`` and a flag when the evidence is thin."""
    if not agg.rows:
        return DASH
    unit = unit or agg.rows[0].unit
    text = number(agg.value, unit)
    if agg.stderr is not None and unit in ("return", "fraction", "ratio", "x", "ms"):
        text += f" ± {number(agg.stderr, unit).removesuffix(' %').removesuffix('×').removesuffix(' ms')}"
    if evidence and unit == "return":
        n, seeds = agg.n, agg.seeds
        parts = [f"n={n}" if n else "n=?", f"{seeds} seed{'s' if seeds != 1 else ''}" if seeds else ""]
        thin = (n or 0) < MIN_EPISODES or (seeds or 0) < 2
        text += f" ({', '.join(p for p in parts if p)}{'; thin' if thin else ''})"
    return text


def escape(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(columns: list[str], rows: Iterable[Iterable[Any]]) -> str:
    body = [list(r) for r in rows]
    if not body:
        return "_no rows in the current records_"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(escape(c) for c in r) + " |" for r in body])


def anchor(suite: str, experiment: str | None = None) -> str:
    return "#" + "-".join(x for x in (suite, experiment) if x).lower().replace("_", "-").replace(" ", "-")


def short_setting(setting: dict[str, Any], skip: Iterable[str] = ()) -> str:
    skip = set(skip) | {"training_seeds"}
    return (
        ", ".join(f"{k}={json.dumps(v) if isinstance(v, dict | list) else v}" for k, v in setting.items() if k not in skip)
        or DASH
    )


# --------------------------------------------------------------------------------------------------
# The README's compact table: method | env | metric | ours | paper | link
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Headline:
    method: str
    env: str
    metric: str
    ours: tuple[Select, ...]
    paper: str = DASH
    #: how two selections combine: "vs" (ours vs the teacher) or "" (one cell)
    join: str = " vs "


def _s(suite: str, experiment: str, metric: str, method: str | None = None, env: str | None = None, **setting: Any) -> Select:
    return Select(suite, experiment, metric, method, env, setting)


CP, MC, PONG, PEND = "CartPole-v1", "MountainCar-v0", "PongNoFrameskip-v4", "Pendulum-v1"
HEADLINES: list[Headline] = [
    Headline("DDQN", CP, "return, final model", (_s("ddqn", "cartpole", "mean_return", "DDQN", CP, checkpoint="final"),)),
    Headline(
        "DDQN+CVTC",
        CP,
        "return, best checkpoint",
        (_s("cvtc", "table4", "mean_return", "DDQN+CVTC", CP, checkpoint="best", inference="beta"),),
        "not in the extracted text",
    ),
    Headline(
        "DDQN+CVTC",
        CP,
        "return, final model",
        (_s("cvtc", "table4", "mean_return", "DDQN+CVTC", CP, checkpoint="final", inference="beta"),),
    ),
    Headline(
        "DDQN+CVTC",
        MC,
        "return, best checkpoint",
        (_s("cvtc", "table4", "mean_return", "DDQN+CVTC", MC, checkpoint="best", inference="beta"),),
    ),
    Headline(
        "DDQN+CVTC",
        MC,
        "return, final model",
        (_s("cvtc", "table4", "mean_return", "DDQN+CVTC", MC, checkpoint="final", inference="beta"),),
    ),
    Headline(
        "Conversion",
        CP,
        "conversion rate, T=500",
        (
            _s(
                "conversion",
                "cartpole",
                "conversion_rate",
                "conversion",
                CP,
                T=500,
                readout="robust",
                rounding="floor",
                percentile=99.9,
                eval_episodes=10,
            ),
        ),
    ),
    Headline(
        "Conversion",
        PONG,
        "return vs teacher, T=500",
        (
            _s("conversion", "pong", "mean_return", "conversion", PONG, T=500, readout="robust"),
            _s("conversion", "pong", "mean_return", "PPO teacher", PONG, episode_seeds="0-4,6-25"),
        ),
        "19.8 ± 1.3 vs DQN 19.9 ± 1.2 (50 games)",
    ),
    Headline(
        "Conversion",
        PONG,
        "return vs teacher, T=100",
        (
            _s("conversion", "pong", "mean_return", "conversion", PONG, T=100, readout="robust"),
            _s("conversion", "pong", "mean_return", "PPO teacher", PONG, episode_seeds="0-4,6-25"),
        ),
    ),
    Headline(
        "Conversion",
        PEND,
        "normalised return, TD3, T=16",
        (_s("conversion", "pendulum", "normalised_return", "conversion", PEND, teacher="TD3", T=16, carry_over=False),),
    ),
    Headline(
        "SDN",
        CP,
        "return vs DQN teacher",
        (
            _s("sdn", "cartpole", "mean_return", "SDN", CP, teacher="DQN"),
            _s("sdn", "cartpole", "mean_return", "DQN teacher", CP, teacher="DQN"),
        ),
    ),
    Headline(
        "SDN",
        PONG,
        "return vs PPO teacher",
        (_s("sdn", "pong", "mean_return", "SDN", PONG), _s("sdn", "pong", "mean_return", "PPO teacher", PONG)),
        "student close to the teacher (Table 1)",
    ),
    Headline(
        "SDN",
        PONG,
        "parameters, student vs teacher",
        (_s("sdn", "pong", "parameter_bytes", "SDN", PONG), _s("sdn", "pong", "parameter_bytes", "PPO teacher", PONG)),
        "50 KB vs 892 KB (Table 1)",
    ),
    Headline(
        "SDN",
        PEND,
        "normalised return, SAC teacher",
        (_s("sdn", "pendulum", "normalised_return", "SDN", PEND, teacher="SAC"),),
    ),
    Headline(
        "SDN",
        PONG,
        "latency teacher/student, forward() vs forward()",
        (_s("sdn", "latency", "teacher_over_student", "SDN student", PONG, path="forward() vs forward()"),),
    ),
    Headline(
        "NC64C",
        CP,
        "int vs float agreement, defaults",
        (_s("nc64c", "bitwidth", "agreement", "converted CartPole DQN (trained, T=32)", defaults=True),),
    ),
    Headline(
        "Conversion, low_latency",
        PONG,
        "return vs PPO teacher, T=64, paired episodes",
        (
            _s("conversion_low_latency", "pong_paired", "score", "low_latency", None),
            _s("conversion_low_latency", "pong_paired", "score", "teacher", None),
        ),
    ),
    Headline(
        "NC64C",
        CP,
        "held-out agreement with the float SNN, converted plain-SB3 DQNs, one obs at a time",
        (_s("nc64c", "agreement", "agreement", None, CP, kind="converted", mode="one_at_a_time"),),
    ),
    Headline(
        "NC64C",
        CP,
        "CVTC (beta-free) on the chip vs float, temporal_dt 0.002",
        (_s("nc64c", "cvtc_resolution", "agreement_with_float", "cvtc-mostafa", CP, temporal_dt=0.002),),
    ),
    Headline("pipeline", CP, "wall time, 2-core CPU", (_s("pipeline", "pipeline", "wall_time", "whole pipeline", CP),)),
]


def headline_rows(rows: list[Row], link: str) -> list[list[str]]:
    out = []
    for h in HEADLINES:
        cells = [cell(Agg(s.rows(rows))) for s in h.ours]
        first = h.ours[0]
        out.append(
            [
                h.method,
                h.env.removesuffix("NoFrameskip-v4"),
                h.metric,
                h.join.join(cells),
                h.paper,
                f"[{first.suite}]({link}{anchor(first.suite, first.experiment)})",
            ]
        )
    return out


# --------------------------------------------------------------------------------------------------
# The issues' targets
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    issue: str
    text: str
    select: Select
    #: "each" (every row), "mean" (the aggregate), or None (reported, no threshold)
    rule: str | None = None
    threshold: float | None = None
    #: ">=" or "<="
    op: str = ">="
    #: a setting key: one cell per env and value of that key (e.g. one per host)
    per: str | None = None
    #: setting overrides naming a reference row: the figure becomes |row - reference| / |reference|
    versus: dict[str, Any] | None = None


def _meets(value: float, t: Target) -> bool:
    return value >= t.threshold if t.op == ">=" else value <= t.threshold  # type: ignore[operator]


TARGETS: list[Target] = [
    Target(
        "#2",
        "DDQN CartPole-v1 ≥ 475 over 100 episodes, every seed",
        _s("ddqn", "cartpole", "mean_return", "DDQN", CP, checkpoint="final"),
        "each",
        475,
    ),
    Target(
        "#3",
        "CVTC 80→800→2 fwd+bwd within 3× of the MLP on CPU (CPU time)",
        _s("speed", "cvtc_vs_mlp", "ratio_vs_mlp_cpu", "CVTC (cvtc_fast)", device="cpu"),
        "each",
        3,
        "<=",
        "host",
    ),
    Target(
        "#3",
        "… the same ratio on a GPU (wall)",
        _s("speed", "cvtc_vs_mlp", "ratio_vs_mlp_wall", "CVTC (cvtc_fast)", device="cuda"),
        per="host",
    ),
    Target(
        "#3",
        "DDQN+CVTC CartPole-v1 ≥ 475, best checkpoint, every seed",
        _s("cvtc", "table4", "mean_return", "DDQN+CVTC", CP, checkpoint="best", inference="beta"),
        "each",
        475,
    ),
    Target(
        "#3",
        "DDQN+CVTC CartPole-v1 ≥ 475, final model, every seed",
        _s("cvtc", "table4", "mean_return", "DDQN+CVTC", CP, checkpoint="final", inference="beta"),
        "each",
        475,
    ),
    Target(
        "#3",
        "DDQN+CVTC MountainCar-v0 ≥ −120, best checkpoint, every seed",
        _s("cvtc", "table4", "mean_return", "DDQN+CVTC", MC, checkpoint="best", inference="beta"),
        "each",
        -120,
    ),
    Target(
        "#3",
        "DDQN+CVTC MountainCar-v0 ≥ −120, final model, every seed",
        _s("cvtc", "table4", "mean_return", "DDQN+CVTC", MC, checkpoint="final", inference="beta"),
        "each",
        -120,
    ),
    Target(
        "#3",
        "Mostafa inference within 2 % of β inference (best checkpoint, every seed)",
        _s("cvtc", "table4", "mean_return", "DDQN+CVTC", checkpoint="best", inference="mostafa"),
        "each",
        0.02,
        "<=",
        versus={"inference": "beta"},
    ),
    Target(
        "#4",
        "CartPole-v1 conversion rate ≥ 99 % at T = 500 (paper's method; per percentile)",
        _s("conversion", "cartpole", "conversion_rate", "conversion", CP, T=500, readout="robust", rounding="floor"),
        "each",
        0.99,
        per="percentile",
    ),
    Target(
        "#4",
        "CartPole-v1 score ≥ 95 % of the DQN at T = 500 (paper's method; per percentile)",
        _s("conversion", "cartpole", "score_over_teacher", "conversion", CP, T=500, readout="robust", rounding="floor"),
        "each",
        0.95,
        per="percentile",
    ),
    Target(
        "#4",
        "Pong: converted return at T = 500 (pooled episodes)",
        _s("conversion", "pong", "mean_return", "conversion", PONG, T=500, readout="robust"),
    ),
    Target(
        "#4",
        "NatureCNN T = 500 batch 1 CPU ≥ 10× faster than the spikingjelly IFNode per-step loop",
        _s("speed", "conversion_simulation", "speedup_of_ours", "spikingjelly IFNode, per-step loop", device="cpu", batch=1),
        "each",
        10,
        per="host",
    ),
    Target(
        "#4",
        "… against a torch per-step loop on a GPU",
        _s("speed", "conversion_simulation", "speedup_of_ours", "per-step loop (torch, IFNode semantics)", device="cuda"),
        per="batch",
    ),
    Target(
        "#5",
        "CartPole: student return ≥ 95 % of the teacher's",
        _s("sdn", "cartpole", "score_over_teacher", "SDN", CP),
        "each",
        0.95,
        per="teacher",
    ),
    Target(
        "#5",
        "CartPole, DQN teacher: student parameters ≥ 100× fewer",
        _s("sdn", "cartpole", "size_ratio", "SDN", CP, teacher="DQN"),
        "each",
        100,
    ),
    Target(
        "#5",
        "CartPole, PPO teacher: student parameters ≥ 100× fewer",
        _s("sdn", "cartpole", "size_ratio", "SDN", CP, teacher="PPO"),
        "each",
        100,
    ),
    Target(
        "#5",
        "student latency ≥ 5× lower, like for like: forward() vs forward()",
        _s("sdn", "latency", "teacher_over_student", "SDN student", path="forward() vs forward()"),
        "each",
        5,
        per="teacher",
    ),
    Target(
        "#5",
        "… SB3 predict() of both",
        _s("sdn", "latency", "teacher_over_student", "SDN student", path="SB3 predict() vs SB3 predict()"),
        "each",
        5,
        per="teacher",
    ),
    Target(
        "#5",
        "… what a user calling model.predict gets: compiled student predict() vs SB3 predict() of the teacher",
        _s(
            "sdn",
            "latency",
            "teacher_over_student",
            "SDN student",
            path="compiled student predict() vs SB3 predict() of the teacher",
        ),
        per="teacher",
    ),
    Target(
        "#6",
        "NC64C integer model agreement ≥ 0.99 at the default widths (trained CartPole networks)",
        _s("nc64c", "bitwidth", "agreement", None, defaults=True),
        "each",
        0.99,
    ),
    Target(
        "#7",
        "main command (whole pipeline, CartPole-v1) under 10 minutes on the 2-core CPU",
        _s("pipeline", "pipeline", "wall_time", "whole pipeline", CP),
        "each",
        600,
        "<=",
    ),
    Target("#7", "the same pipeline on Atari (report)", _s("pipeline", "pipeline", "wall_time", "whole pipeline", PONG)),
]


def relative_gaps(found: list[Row], versus: dict[str, Any], rows: list[Row]) -> list[Row]:
    """Each row's value replaced by |value - reference| / |reference|, the reference being the row
    that differs only by the ``versus`` settings."""
    index = {
        (r.suite, r.experiment, r.method, r.env, json.dumps(r.setting, sort_keys=True), r.seed, r.metric): r for r in rows
    }
    out = []
    for r in found:
        ref = index.get(
            (r.suite, r.experiment, r.method, r.env, json.dumps({**r.setting, **versus}, sort_keys=True), r.seed, r.metric)
        )
        if ref is not None and ref.value:
            gap = abs(r.value - ref.value) / abs(ref.value)
            out.append(Row(r.suite, r.experiment, r.method, r.env, r.setting, r.seed, "gap", gap, None, None, "fraction"))
    return out


def target_rows(rows: list[Row], link: str = "") -> list[list[str]]:
    """[issue, target, reached, status, link] per target of :data:`TARGETS`."""
    out = []
    for t in TARGETS:
        found = t.select.rows(rows)
        if t.select.suite == "nc64c":
            found = [r for r in found if "trained" in r.method or "student" in r.method]
        if t.versus:
            found = relative_gaps(found, t.versus, rows)
        groups: dict[tuple, list[Row]] = defaultdict(list)
        for r in found:
            groups[(r.env, r.setting.get(t.per) if t.per else None)].append(r)
        cells, hits = [], 0
        for (env, key), group in groups.items():
            label = ", ".join(
                str(x)
                for x in (
                    env.removesuffix("NoFrameskip-v4") if len(groups) > 1 else None,
                    f"{t.per}={key}" if t.per and t.per != "host" else key,
                )
                if x not in (None, "-")
            )
            label = f"{label}: " if label else ""
            if t.rule == "each" and len(group) > 1:
                ok = sum(_meets(r.value, t) for r in group)
                hits += ok == len(group)
                low, high = min(r.value for r in group), max(r.value for r in group)
                unit = group[0].unit
                cells.append(f"{label}{ok}/{len(group)} meet it (range {number(low, unit)} to {number(high, unit)})")
            else:
                agg = Agg(group)
                hits += t.rule is not None and agg.value is not None and _meets(agg.value, t)
                cells.append(label + cell(agg))
        if not found:
            state = "not run"
        elif t.rule is None:
            state = "reported"
        else:
            state = "met" if hits == len(groups) else "partly met" if hits else "**NOT met**"
        sel = t.select
        out.append(
            [
                t.issue,
                t.text,
                "; ".join(cells) or DASH,
                state,
                f"[{sel.suite}/{sel.experiment}]({link}{anchor(sel.suite, sel.experiment)})",
            ]
        )
    return out


# --------------------------------------------------------------------------------------------------
# Per-suite tables
# --------------------------------------------------------------------------------------------------
def experiment_table(rows: list[Row]) -> list[str]:
    """One experiment: settings common to every row stated once; a line per (method, env, setting,
    seed), a column per metric; the commands and machines below."""
    values: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        for k, v in r.setting.items():
            values[k].add(json.dumps(v, sort_keys=True))
    common = {k: json.loads(next(iter(v))) for k, v in values.items() if len(v) == 1}
    lines: dict[tuple, dict[str, Row]] = {}
    metrics: list[str] = []
    for r in rows:
        key = (r.method, r.env, short_setting(r.setting, common), r.seed)
        lines.setdefault(key, {})[r.metric] = r
        if r.metric not in metrics:
            metrics.append(r.metric)
    out = []
    if any(k != "training_seeds" for k in common):
        out += [f"Setting shared by the rows that name it: {short_setting(common)}.", ""]
    body = [
        [m, e, s, DASH if seed is None else seed, *[cell(Agg([got[x]])) if x in got else DASH for x in metrics]]
        for (m, e, s, seed), got in lines.items()
    ]
    out.append(table(["method", "env", "setting", "seed", *metrics], body))
    notes = []
    for r in rows:
        if r.extra.get("distinct_episodes") and r.n and r.extra["distinct_episodes"] < r.n:
            notes.append(
                f"{r.method}, {r.metric}: {r.n} episodes, {r.extra['distinct_episodes']} distinct "
                "(equal lengths: the same game replayed)"
            )
        if isinstance(r.extra.get("note"), str):
            notes.append(f"{r.method}, {r.metric}: {r.extra['note']}")
    if notes:
        out += ["", *[f"- {n}" for n in dict.fromkeys(notes)]]
    runs = {
        (
            r.extra.get("run", {}).get("command", DASH),
            r.extra.get("run", {}).get("machine", DASH),
            r.extra.get("run", {}).get("commit", DASH),
        )
        for r in rows
    }
    out += ["", "Produced by:", ""]
    out += [f"- `{c}` on {m} (commit {k})" for c, m, k in sorted(runs)]
    return [*out, ""]


def suite_order(suites: Iterable[str]) -> list[str]:
    names = set(suites)
    head = [s for s in SUITE_ORDER if s in names]
    rest = sorted(s for s in names if s not in SUITE_ORDER and not s.startswith("study-"))
    return head + rest + sorted(s for s in names if s.startswith("study-"))


def render(rows: list[Row]) -> str:
    """The whole ``docs/results.md``."""
    rows = latest(rows)
    by_suite: dict[str, dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_suite[r.suite][r.experiment].append(r)
    parts = [
        "# Measured results",
        "",
        "Generated by `python benchmarks/report.py` from `benchmarks/records/*.jsonl`; **do not edit by hand** "
        "(re-run a suite with `python benchmarks/run.py --suite NAME`, then the report). Returns are "
        f'`mean ± standard error (n episodes, training seeds)`; "thin" marks fewer than {MIN_EPISODES} episodes '
        "or a single training seed. Several seeds: the mean of the per-seed means, its s.e. across seeds.",
        "",
        "## Headline results",
        "",
        table(["method", "env", "metric", "ours", "paper", "suite"], headline_rows(rows, "")),
        "",
        "## The issues' targets",
        "",
        'One row per "Must show" target; "reported" = a figure asked for without a threshold. Latency targets '
        "are judged on like-for-like paths; the user-facing `model.predict` path is listed beside them.",
        "",
        table(["issue", "target", "reached", "status", "rows"], target_rows(rows)),
        "",
    ]
    for suite in suite_order(by_suite):
        kind = "Study" if suite.startswith("study-") else "Suite"
        parts += [f'<a id="{anchor(suite)[1:]}"></a>', "", f"## {kind} `{suite}`", ""]
        for experiment, exp_rows in by_suite[suite].items():
            parts += [f'<a id="{anchor(suite, experiment)[1:]}"></a>', "", f"### {suite} / {experiment}", ""]
            parts += experiment_table(exp_rows)
    return "\n".join(parts).rstrip() + "\n"


def readme_block(rows: list[Row], docs_link: str = "docs/results.md") -> str:
    """The README's block: the compact headline table, cells linked into the full report."""
    rows = latest(rows)
    return (
        'Mean ± s.e. (n episodes, training seeds; "thin": under 30 episodes or one seed). Every suite, the issues\' '
        f"targets, commands and machines: [{docs_link}]({docs_link}).\n\n"
        + table(["method", "env", "metric", "ours", "paper", "link"], headline_rows(rows, docs_link))
    )


def with_block(text: str, block: str) -> str:
    """``text`` with the part between the markers replaced by ``block``."""
    if START not in text or END not in text:
        raise ValueError(f"the README has no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=Path, default=RECORDS, help="folder of the suites' .jsonl records")
    parser.add_argument("--out", type=Path, default=OUT, help="the full report to write")
    parser.add_argument("--readme", type=Path, default=README, help="README whose results block is replaced")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if either file is stale")
    args = parser.parse_args(argv)
    rows = load_rows(directory=args.records)
    try:
        link = Path(args.out).resolve().relative_to(args.readme.resolve().parent).as_posix()
    except ValueError:
        link = str(args.out)
    report = render(rows)
    readme = with_block(args.readme.read_text(), readme_block(rows, link))
    if args.check:
        stale = [str(p) for p, text in ((args.out, report), (args.readme, readme)) if not p.exists() or p.read_text() != text]
        if stale:
            print(f"stale: {', '.join(stale)}; run python benchmarks/report.py")
            return 1
        print(f"up to date with {len(rows)} rows")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    args.readme.write_text(readme)
    print(f"wrote {args.out} and the results block of {args.readme} from {len(rows)} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
