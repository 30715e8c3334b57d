"""One timing harness for the speed benchmarks.

Candidates are called in turn (round robin, in a shuffled order each round), so that load from other
processes on a shared machine falls on all of them alike; each call is timed in thread CPU time
(``time.thread_time``: what the calling thread computed, insensitive to waiting for a core) and in
wall-clock time (``time.perf_counter``); the figure is the median over the timed calls. On a GPU the
wall time is the one that counts (pass ``sync`` so that each call waits for the device).

    from benchmarks.timing import interleaved, timing_rows
    timings = interleaved({"mlp": f, "cvtc": g}, repeats=300, warmup=5)
    rows = timing_rows("speed", "cvtc_vs_mlp", timings, baseline="mlp", setting={...})
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.records import Row, machine


@dataclass(frozen=True)
class Timing:
    """Medians (milliseconds) of one candidate's timed calls.

    :param cpu_ms: median thread CPU time per call
    :param wall_ms: median wall-clock time per call
    :param n: timed calls
    :param wall_iqr_ms: interquartile range of the wall times (spread under load)
    """

    cpu_ms: float
    wall_ms: float
    n: int
    wall_iqr_ms: float


def _iqr(values: list[float]) -> float:
    if len(values) < 4:
        return 0.0
    q = statistics.quantiles(values, n=4)
    return q[2] - q[0]


def interleaved(
    calls: dict[str, Callable[[], Any]],
    repeats: int = 300,
    warmup: int = 5,
    sync: Callable[[], None] | None = None,
    seed: int = 0,
) -> dict[str, Timing]:
    """Time each callable ``repeats`` times, the candidates interleaved call by call.

    :param calls: name -> a callable taking no argument
    :param repeats: timed calls of each candidate (>= 1)
    :param warmup: untimed calls of each first (JIT compilation, caches, allocator)
    :param sync: called inside the timed region after each call (e.g. ``torch.cuda.synchronize``)
    :param seed: seed of the per-round shuffle of the candidates' order
    :return: name -> :class:`Timing`
    """
    if not calls:
        raise ValueError("interleaved() needs at least one candidate")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    for _ in range(warmup):
        for call in calls.values():
            call()
            if sync is not None:
                sync()
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    wall: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls)
    rng = random.Random(seed)
    for _ in range(repeats):
        rng.shuffle(order)
        for name in order:
            start_wall, start_cpu = time.perf_counter(), time.thread_time()
            calls[name]()
            if sync is not None:
                sync()
            cpu[name].append(1000.0 * (time.thread_time() - start_cpu))
            wall[name].append(1000.0 * (time.perf_counter() - start_wall))
    return {
        name: Timing(statistics.median(cpu[name]), statistics.median(wall[name]), repeats, _iqr(wall[name])) for name in calls
    }


def machine_record() -> dict[str, Any]:
    """The machine a timing ran on: the description of :func:`benchmarks.records.machine` and the load."""
    import os

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"machine": machine(), "load_average": list(load) if load else None}


def timing_rows(
    suite: str,
    experiment: str,
    timings: dict[str, Timing],
    *,
    setting: dict[str, Any],
    baseline: str | None = None,
    env: str = "-",
    cpu: bool = True,
    methods: dict[str, str] | None = None,
) -> list[Row]:
    """Rows of a timing: per candidate the median wall (and CPU) time, and the ratio to ``baseline``.

    :param suite: the rows' suite
    :param experiment: the rows' experiment
    :param timings: the result of :func:`interleaved`
    :param setting: what distinguishes this timing (device, host, threads, batch, ...)
    :param baseline: a candidate name; the others get ``ratio_vs_<baseline>_wall`` (and ``_cpu``) rows
    :param env: the env the candidates act in, ``-`` for none
    :param cpu: also rows of the CPU time (leave out on a GPU, where the thread mostly waits)
    :param methods: display names of the candidates (default: the names)
    """
    methods = methods or {}
    extra = machine_record()
    rows = []
    for name, t in timings.items():
        method = methods.get(name, name)
        rows.append(
            Row(
                suite,
                experiment,
                method,
                env,
                setting,
                None,
                "wall_time_median",
                t.wall_ms,
                None,
                t.n,
                "ms",
                {**extra, "wall_iqr_ms": t.wall_iqr_ms},
            )
        )
        if cpu:
            rows.append(
                Row(suite, experiment, method, env, setting, None, "cpu_time_median", t.cpu_ms, None, t.n, "ms", extra)
            )
        if baseline is not None and name != baseline and baseline in timings:
            base = timings[baseline]
            rows.append(
                Row(
                    suite,
                    experiment,
                    method,
                    env,
                    setting,
                    None,
                    f"ratio_vs_{baseline}_wall",
                    t.wall_ms / base.wall_ms,
                    None,
                    None,
                    "x",
                    extra,
                )
            )
            if cpu and base.cpu_ms > 0:
                rows.append(
                    Row(
                        suite,
                        experiment,
                        method,
                        env,
                        setting,
                        None,
                        f"ratio_vs_{baseline}_cpu",
                        t.cpu_ms / base.cpu_ms,
                        None,
                        None,
                        "x",
                        extra,
                    )
                )
    return rows
