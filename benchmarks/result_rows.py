"""Rows (:class:`benchmarks.records.Row`) from the result dict a benchmark script builds.

The benchmark scripts assemble one dict per run (``command``, ``machine``, ``rows`` and their own
fields) and hand it to ``common.write_result`` (or ``bench_conversion_common.write_record``). This
module turns such a dict into rows of the one record format, by the script that wrote it, and
appends them to the right suite. ``python benchmarks/result_rows.py FILE.json ...`` converts saved
dicts (a script's scratch copy under ``benchmarks/out/results/``) the same way.

Conventions of the rows made here:

- returns: ``metric="mean_return"``, ``value`` the mean over ``n`` evaluation episodes, ``stderr``
  the standard error of that mean (sample standard deviation / sqrt(n)), the per-episode returns in
  ``extra["returns"]`` where the script kept them;
- ``setting["training_seeds"]``: how many independently trained models the value rests on (1 for a
  single training run); ``seed`` is the training seed of that run where known;
- ``setting["checkpoint"]``: ``best`` (the evaluation callback's best model) or ``final``;
- latency rows name the call path they timed in ``setting["path"]`` (``predict`` through the
  compiled student, SB3's ``predict``, the raw ``forward``), so that only like paths are compared.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.records import Row, append_rows

#: The suite a record goes to, by the name of its JSON record (first matching prefix wins).
#: Suites named ``study-*`` hold screens and one-off sweeps, apart from the headline suites.
SUITE_OF: list[tuple[str, str]] = [
    ("ddqn_", "ddqn"),
    ("cvtc_results", "cvtc"),
    ("cvtc_cartpole_sweep", "study-cvtc-sweep"),
    ("cvtc_speed", "speed"),
    ("conversion_speed", "speed"),
    ("cartpole_conversion_options", "study-conversion-options"),
    ("cartpole_conversion_teacher", "study-conversion-teachers"),
    ("conversion_", "conversion"),
    ("sdn_pong_frames_tdbn_200k", "sdn"),
    ("sdn_pong", "study-sdn-pong"),
    ("sdn_", "sdn"),
    ("nc64c_", "nc64c"),
    ("pipeline_", "pipeline"),
]


def suite_of(name: str) -> str:
    """The suite of a record named ``name`` (the JSON file's stem).

    :param name: the record's name, e.g. ``conversion_pong``
    """
    for prefix, suite in SUITE_OF:
        if name.startswith(prefix):
            return suite
    raise ValueError(f"no suite for record {name!r}; known prefixes: {[p for p, _ in SUITE_OF]}")


def num(value: Any) -> float | None:
    """A finite float, or ``None`` (strings, booleans, NaN, missing)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def stderr_of(std: Any, n: Any, population: bool = True) -> float | None:
    """Standard error of a mean from a standard deviation over ``n`` samples.

    :param std: the standard deviation (``np.std``, i.e. population, unless ``population=False``)
    :param n: the sample count
    :param population: whether ``std`` divides by n (then it is rescaled to the sample estimate)
    """
    std, count = num(std), num(n)
    if std is None or count is None or count < 2:
        return None
    return std / math.sqrt(count - 1) if population else std / math.sqrt(count)


def returns_row(
    suite: str,
    experiment: str,
    method: str,
    env: str,
    setting: dict[str, Any],
    seed: int | None,
    mean: Any,
    std: Any = None,
    n: Any = None,
    returns: list[float] | None = None,
    extra: dict[str, Any] | None = None,
) -> Row | None:
    """A ``mean_return`` row; from the per-episode returns when given, else from mean/std/n."""
    extra = dict(extra or {})
    if returns:
        values = [float(r) for r in returns]
        count = len(values)
        mean_value = sum(values) / count
        var = sum((v - mean_value) ** 2 for v in values) / (count - 1) if count > 1 else None
        se = math.sqrt(var / count) if var is not None else None
        extra["returns"] = values
        return Row(suite, experiment, method, env, setting, seed, "mean_return", mean_value, se, count, "return", extra)
    if num(mean) is None:
        return None
    count = int(num(n)) if num(n) else None
    if num(std) is not None:
        extra["std"] = num(std)
    return Row(
        suite, experiment, method, env, setting, seed, "mean_return", num(mean), stderr_of(std, count), count, "return", extra
    )


def metric_row(
    suite: str,
    experiment: str,
    method: str,
    env: str,
    setting: dict[str, Any],
    seed: int | None,
    metric: str,
    value: Any,
    unit: str,
    n: Any = None,
    stderr: Any = None,
    extra: dict[str, Any] | None = None,
) -> Row | None:
    """Any other row; ``None`` when the value is missing or not finite."""
    if num(value) is None:
        return None
    count = int(num(n)) if num(n) else None
    return Row(suite, experiment, method, env, setting, seed, metric, num(value), num(stderr), count, unit, dict(extra or {}))


def host_of(machine: Any) -> str:
    """A short name of the machine: CPU model and cores (plus the GPU), from a machine description."""
    if isinstance(machine, dict):
        text = ", ".join(f"{k}: {v}" for k, v in machine.items())
        cores = machine.get("cpu_count")
        cpu = str(machine.get("processor") or "")
        return f"{'AMD EPYC' if 'AMD' in text or cores == 2 else cpu or 'CPU'} {cores} cores"
    text = str(machine or "")
    gpu = re.search(r"GPU (NVIDIA [A-Z]\d+)", text)
    cores = re.search(r"(\d+) cores", text)
    if "gpu" in text.lower() and not cores:
        base = "Xeon 16 cores"
    elif "AMD EPYC" in text:
        base = f"AMD EPYC {cores.group(1) if cores else '?'} cores"
    elif "Xeon" in text:
        base = f"Xeon {cores.group(1) if cores else '?'} cores"
    else:
        base = text.split(",")[0][:40] or "unknown"
    return base + (f", {gpu.group(1)}" if gpu else "")


def _source(record: dict[str, Any], name: str) -> dict[str, Any]:
    """Provenance of a result dict in the shape :func:`benchmarks.records.run_info` gives."""
    machine = record.get("machine")
    if isinstance(machine, dict):
        machine = ", ".join(f"{k}: {v}" for k, v in machine.items() if v not in (None, ""))
    return {
        "commit": record.get("commit", "unknown"),
        "machine": str(machine or "not recorded"),
        "command": str(record.get("command", "not recorded")),
        "time": record.get("time", "unknown"),
        "record": name,
    }


# --------------------------------------------------------------------------------------------------
# One function per script family
# --------------------------------------------------------------------------------------------------
def _ddqn(suite: str, record: dict[str, Any]) -> Iterable[Row | None]:
    for r in record.get("rows") or []:
        checkpoint = "final" if r.get("model") in ("last", "final") else "best"
        setting = {"checkpoint": checkpoint, "config": "sb3_snn/configs/zoo/ddqn.yml", "training_seeds": 1}
        yield returns_row(
            suite,
            "cartpole",
            "DDQN",
            "CartPole-v1",
            setting,
            r.get("seed"),
            r.get("mean_reward"),
            r.get("std_reward"),
            r.get("episodes"),
            extra={"train_seconds": r.get("train_seconds")},
        )


CVTC_METHODS = {"cvtc": "DDQN+CVTC", "mlp": "DDQN (MLP)", "ppo": "PPO"}


def _cvtc_results(suite: str, record: dict[str, Any]) -> Iterable[Row | None]:
    for r in record.get("rows") or []:
        setting = {
            "checkpoint": "final" if r.get("model") in ("final", "last") else "best",
            "inference": r.get("inference", "default"),
            "training_seeds": 1,
        }
        yield returns_row(
            suite,
            "table4",
            CVTC_METHODS.get(r.get("row"), str(r.get("row"))),
            r["env"],
            setting,
            r.get("seed"),
            r.get("mean_reward"),
            r.get("std_reward"),
            r.get("episodes"),
            extra={"target": r.get("target"), "train_command": r.get("command")},
        )


def _cvtc_sweep(suite: str, record: dict[str, Any]) -> Iterable[Row | None]:
    for r in record.get("rows") or []:
        setting = {"config": r.get("config"), "changes": r.get("changes") or {}, "training_seeds": 1}
        extra = {"protocol": record.get("protocol"), "curve": r.get("curve"), "late_at_475": r.get("late_at_475")}
        yield metric_row(
            suite,
            "cartpole_sweep",
            "DDQN+CVTC",
            "CartPole-v1",
            setting,
            r.get("seed"),
            "best_eval_return",
            r.get("max"),
            "return",
            extra=extra,
        )
        yield metric_row(
            suite,
            "cartpole_sweep",
            "DDQN+CVTC",
            "CartPole-v1",
            setting,
            r.get("seed"),
            "late_mean_return",
            r.get("late_mean"),
            "return",
        )


def _cvtc_speed(suite: str, record: dict[str, Any]) -> Iterable[Row | None]:
    text = str(record.get("machine"))
    device = "cuda" if "GPU" in text or "cuda" in str(record.get("command")) else "cpu"
    threads = re.search(r"(\d+) torch thread", text)
    setting = {
        "device": device,
        "host": host_of(record.get("machine")),
        "batch": 32,
        "shape": "80-800-2",
        "threads": int(threads.group(1)) if threads else None,
        "pass": "forward+backward",
    }
    for r in record.get("rows") or []:
        method = f"CVTC ({r['candidate']})" if r.get("candidate") != "mlp" else "MLP"
        n = r.get("samples")
        yield metric_row(
            suite, "cvtc_vs_mlp", method, "-", setting, None, "wall_time_median", r.get("wall_ms_median"), "ms", n=n
        )
        yield metric_row(
            suite, "cvtc_vs_mlp", method, "-", setting, None, "cpu_time_median", r.get("cpu_ms_median"), "ms", n=n
        )
        if r.get("candidate") != "mlp":
            yield metric_row(
                suite, "cvtc_vs_mlp", method, "-", setting, None, "ratio_vs_mlp_wall", r.get("ratio_vs_mlp_wall"), "x"
            )
            yield metric_row(
                suite, "cvtc_vs_mlp", method, "-", setting, None, "ratio_vs_mlp_cpu", r.get("ratio_vs_mlp_cpu"), "x"
            )


def _conversion_speed(suite: str, record: dict[str, Any]) -> Iterable[Row | None]:
    rows = [r for r in record.get("rows") or [] if isinstance(r, dict)]
    text = str(record.get("machine"))
    threads = re.search(r"(\d+) torch thread", text)
    base = {
        "host": host_of(record.get("machine")),
        "threads": int(threads.group(1)) if threads else None,
        "network": "NatureCNN",
        "T": record.get("timesteps", 500),
    }
    if any("simulation" in r for r in rows):
        setting = {**base, "device": record.get("device", "cpu"), "batch": record.get("batch", 1)}
        for r in rows:
            name = str(r["simulation"]).split(" (")[0]
            yield metric_row(
                suite,
                "conversion_simulation",
                name,
                "-",
                setting,
                None,
                "latency_median",
                1000 * num(r.get("median s/action")) if num(r.get("median s/action")) else None,
                "ms",
                extra={
                    "description": r["simulation"],
                    "spike_mismatches_float32": r.get("spike mismatches vs fast (float32)"),
                },
            )
            if num(r.get("fast / this")) not in (None, 1.0):
                yield metric_row(
                    suite,
                    "conversion_simulation",
                    name,
                    "-",
                    setting,
                    None,
                    "speedup_of_ours",
                    r.get("fast / this"),
                    "x",
                    extra={"description": r["simulation"]},
                )
        return
    device = "cuda" if "cuda" in str(record.get("command")) and "--device cpu" not in str(record.get("command")) else "cpu"
    for r in rows:
        batch = int(num(r.get("batch")) or 1)
        setting = {**base, "device": device, "batch": batch}
        loop = num(r.get("per_step_loop_seconds"))
        yield metric_row(
            suite,
            "conversion_simulation",
            "sb3-snn fast",
            "-",
            setting,
            None,
            "latency_median",
            1000 * num(r.get("fast_seconds_per_action")) if num(r.get("fast_seconds_per_action")) else None,
            "ms",
            extra={"spike_mismatches_float32": r.get("spike_mismatches_float32")},
        )
        yield metric_row(
            suite,
            "conversion_simulation",
            "per-step loop (torch, IFNode semantics)",
            "-",
            setting,
            None,
            "latency_median",
            1000 * loop / batch if loop else None,
            "ms",
        )
        yield metric_row(
            suite,
            "conversion_simulation",
            "per-step loop (torch, IFNode semantics)",
            "-",
            setting,
            None,
            "speedup_of_ours",
            r.get("speedup"),
            "x",
        )


def _sdn_latency(
    suite: str, env: str, student: str, teacher: str, lat: dict[str, Any], machine: Any, command: Any
) -> Iterable[Row | None]:
    """Latency of one student and its teacher, per call path; ratios only between like paths plus the
    user-facing one (labelled as such)."""
    base = {
        "host": host_of(machine),
        "threads": lat.get("torch_threads", 1),
        "teacher": teacher,
        "student": student,
        "batch": 1,
    }
    extra = {
        "timing": "thread CPU time, median of interleaved calls",
        "repeats": lat.get("repeats"),
        "latency_command": command,
    }
    paths = [
        ("SDN student", "predict (compiled student path)", "student_predict_ms"),
        ("SDN student", "SB3 predict()", "student_sb3_predict_ms"),
        ("SDN student", "forward()", "student_forward_ms"),
        (f"{teacher} teacher", "SB3 predict()", "teacher_predict_ms"),
        (f"{teacher} teacher", "forward()", "teacher_forward_ms"),
    ]
    for method, path, key in paths:
        yield metric_row(
            suite,
            "latency",
            method,
            env,
            {**base, "path": path},
            None,
            "latency_median",
            lat.get(key),
            "ms",
            n=lat.get("repeats"),
            extra=extra,
        )
    ratios = [
        ("SB3 predict() vs SB3 predict()", "teacher_predict_ms", "student_sb3_predict_ms"),
        ("forward() vs forward()", "teacher_forward_ms", "student_forward_ms"),
        ("compiled student predict() vs SB3 predict() of the teacher", "teacher_predict_ms", "student_predict_ms"),
    ]
    for path, teacher_key, student_key in ratios:
        t, s = num(lat.get(teacher_key)), num(lat.get(student_key))
        yield metric_row(
            suite,
            "latency",
            "SDN student",
            env,
            {**base, "path": path},
            None,
            "teacher_over_student",
            t / s if t and s else None,
            "x",
            extra=extra,
        )


def _sdn_cartpole(suite: str, record: dict[str, Any]) -> Iterable[Row | None]:
    env = record.get("env", "CartPole-v1")
    for name, t in (record.get("teachers") or {}).items():
        teacher = t.get("teacher_algo") or name.upper()
        settings = t.get("student_settings") or {}
        steps = (t.get("student_curve") or [[None]])[-1][0]
        setting = {
            "teacher": teacher,
            "steps": steps,
            "loss": settings.get("distillation_loss"),
            "n_steps": (settings.get("policy_kwargs") or {}).get("n_steps"),
            "training_seeds": 1,
        }
        student, tea = t.get("student") or {}, t.get("teacher") or {}
        yield returns_row(
            suite,
            "cartpole",
            "SDN",
            env,
            setting,
            None,
            student.get("mean"),
            student.get("std"),
            returns=student.get("rewards"),
        )
        yield returns_row(
            suite,
            "cartpole",
            f"{teacher} teacher",
            env,
            {"teacher": teacher, "training_seeds": 1},
            None,
            tea.get("mean"),
            tea.get("std"),
            returns=tea.get("rewards"),
        )
        yield metric_row(
            suite, "cartpole", "SDN", env, setting, None, "score_over_teacher", t.get("student_over_teacher"), "ratio"
        )
        yield metric_row(
            suite,
            "cartpole",
            "SDN",
            env,
            setting,
            None,
            "agreement",
            student.get("agreement"),
            "fraction",
            n=student.get("agent_steps"),
        )
        yield metric_row(
            suite, "cartpole", "SDN", env, setting, None, "synops_per_action", student.get("synops_per_action"), "synops"
        )
        yield metric_row(suite, "cartpole", "SDN", env, setting, None, "parameter_bytes", t.get("student_bytes"), "bytes")
        yield metric_row(
            suite,
            "cartpole",
            f"{teacher} teacher",
            env,
            {"teacher": teacher},
            None,
            "parameter_bytes",
            t.get("teacher_bytes_acting"),
            "bytes",
        )
        yield metric_row(suite, "cartpole", "SDN", env, setting, None, "size_ratio", t.get("size_ratio_acting"), "x")
        yield metric_row(
            suite,
            "cartpole",
            "SDN",
            env,
            setting,
            None,
            "steps_to_95pct",
            t.get("student_steps_to_95pct"),
            "steps",
            extra={"curve": t.get("student_curve")},
        )
        lat = (record.get("latency") or {}).get("teachers", {}).get(name)
        if lat:
            arch = (settings.get("policy_kwargs") or {}).get("net_arch")
            yield from _sdn_latency(
                suite,
                env,
                f"net_arch {arch}, T={setting['n_steps']}",
                teacher,
                lat,
                record["latency"].get("machine"),
                record["latency"].get("command"),
            )
    scratch = record.get("dqn_from_scratch") or {}
    yield metric_row(
        suite,
        "cartpole",
        "DQN (from scratch)",
        env,
        {"training_seeds": 1},
        None,
        "steps_to_target",
        scratch.get("first_step_at_target"),
        "steps",
        extra={
            "curve": scratch.get("curve"),
            "evals_at_target": scratch.get("evals_at_target"),
            "evals": scratch.get("evals"),
            "target": scratch.get("target"),
        },
    )
    speed = record.get("speed") or {}
    for method, key in (("SDN", "distillation_steps_per_s"), ("DQN", "dqn_steps_per_s")):
        yield metric_row(
            suite,
            "cartpole_training_speed",
            method,
            env,
            {"batch": speed.get("batch_size"), "host": host_of(record.get("machine"))},
            None,
            "gradient_steps_per_s",
            speed.get(key),
            "steps/s",
        )


def _sdn_pong(suite: str, record: dict[str, Any], name: str) -> Iterable[Row | None]:
    env = record.get("env", "PongNoFrameskip-v4")
    teacher = record.get("teacher") or {}
    device = record.get("device", "cpu")
    experiment = "pong" if suite == "sdn" else name.removeprefix("sdn_")
    yield returns_row(
        suite,
        experiment,
        "PPO teacher",
        env,
        {"training_seeds": 1},
        None,
        teacher.get("mean"),
        teacher.get("std"),
        n=None,
        extra={"source": teacher.get("source")},
    )
    yield metric_row(
        suite, experiment, "PPO teacher", env, {}, None, "parameter_bytes", record.get("teacher_bytes_acting"), "bytes"
    )
    latencies = (record.get("latency") or {}).get("students") or []
    for index, (variant, r) in enumerate((record.get("rows") or {}).items()):
        student = r.get("student") or {}
        setting = {"variant": variant, "steps": r.get("steps"), "device": device, "training_seeds": 1}
        rewards = student.get("rewards")
        yield returns_row(
            suite,
            experiment,
            "SDN",
            env,
            setting,
            None,
            student.get("mean"),
            student.get("std"),
            returns=rewards,
            extra={"episode_lengths": student.get("lengths")},
        )
        yield metric_row(
            suite,
            experiment,
            "SDN",
            env,
            setting,
            None,
            "agreement",
            student.get("agreement"),
            "fraction",
            n=student.get("agent_steps"),
        )
        yield metric_row(
            suite, experiment, "SDN", env, setting, None, "synops_per_action", student.get("synops_per_action"), "synops"
        )
        yield metric_row(suite, experiment, "SDN", env, setting, None, "parameter_bytes", r.get("student_bytes"), "bytes")
        yield metric_row(suite, experiment, "SDN", env, setting, None, "size_ratio", r.get("size_ratio_acting"), "x")
        yield metric_row(
            suite,
            experiment,
            "SDN",
            env,
            {**setting, "device": device},
            None,
            "distillation_steps_per_s",
            r.get("distillation_steps_per_s"),
            "steps/s",
            extra={"host": host_of(record.get("machine"))},
        )
        lat = latencies[index] if index < len(latencies) else None
        if lat and device == "cpu":
            yield from _sdn_latency(
                suite, env, variant, "PPO", lat, record["latency"].get("machine"), record["latency"].get("command")
            )


def _sdn_continuous(suite: str, record: dict[str, Any]) -> Iterable[Row | None]:
    env = record.get("env", "Pendulum-v1")
    n = record.get("episodes")
    for algo, r in (record.get("results") or {}).items():
        teacher, student = r.get("teacher") or {}, r.get("student") or {}
        setting = {
            "teacher": algo.upper(),
            "steps": student.get("steps"),
            "training_seeds": 1,
            "loss": (student.get("settings") or {}).get("distillation_loss"),
        }
        per_seed = r.get("per_seed") or []
        yield returns_row(
            suite,
            "pendulum",
            "SDN",
            env,
            setting,
            None,
            student.get("mean_return"),
            student.get("std_return"),
            n,
            returns=[p["student"] for p in per_seed] or None,
        )
        yield returns_row(
            suite,
            "pendulum",
            f"{algo.upper()} teacher",
            env,
            {"teacher": algo.upper(), "training_seeds": 1},
            None,
            teacher.get("mean_return"),
            teacher.get("std_return"),
            n,
            returns=[p["teacher"] for p in per_seed] or None,
        )
        yield metric_row(
            suite,
            "pendulum",
            "SDN",
            env,
            setting,
            None,
            "normalised_return",
            r.get("normalised_return"),
            "fraction",
            n=n,
            extra={"definition": record.get("normalisation")},
        )
        yield metric_row(
            suite, "pendulum", "SDN", env, setting, None, "parameter_bytes", student.get("parameter_bytes"), "bytes"
        )


def _percentile(record: dict[str, Any]) -> float | None:
    text = " ".join([str(record.get("command", "")), *[str(n) for n in record.get("notes") or []]])
    match = re.search(r"--percentile\s+([\d.]+)", text) or re.search(r"percentile ([\d.]+)", text)
    return float(match.group(1)) if match else 99.9


def _episode_seeds(record: dict[str, Any]) -> str | None:
    for note in record.get("notes") or []:
        match = re.search(r"episode seeds (\d+)\.\.(\d+)", str(note))
        if match:
            return f"{match.group(1)}-{match.group(2)}"
    return None


def _conversion(suite: str, record: dict[str, Any], name: str) -> Iterable[Row | None]:
    """bench_conversion_cartpole.py / bench_conversion_pong.py records: a T sweep of one teacher."""
    pong = "pong" in name
    env = "PongNoFrameskip-v4" if pong else "CartPole-v1"
    teacher_name = "PPO teacher" if pong else "DQN teacher"
    teacher = record.get("teacher") or {}
    experiment = "pong" if pong else ("cartpole" if suite == "conversion" else "cartpole_teachers")
    common = {"percentile": _percentile(record), "training_seeds": 1}
    if suite != "conversion":
        common["teacher"] = name.removeprefix("cartpole_conversion_teacher_")
    elif not pong:
        common["teacher_seed"] = teacher.get("seed")
    episodes = next((r.get("episodes") for r in record.get("rows") or []), None)
    if episodes and not pong:
        common["eval_episodes"] = episodes
    seeds = _episode_seeds(record)
    if seeds:
        common["episode_seeds"] = seeds
    details = {(d.get("timesteps"), d.get("readout"), d.get("rounding", "floor")): d for d in record.get("details") or []}
    for r in record.get("rows") or []:
        readout = str(r.get("readout")).removesuffix(" (round)")
        t = None if readout == "ann" else int(num(r.get("T")) or 0)
        rounding = r.get("rounding", "floor") if readout != "ann" else None
        detail = details.get(
            (t or 0, readout, r.get("rounding", "floor") if readout != "ann" else r.get("rounding", "-")),
            details.get((t or 0, readout, "floor"), {}),
        )
        if readout == "ann":
            method, setting = teacher_name, {k: v for k, v in common.items() if k != "percentile"}
        else:
            method = "conversion"
            setting = {**common, "T": t, "readout": readout, "rounding": rounding}
        yield returns_row(
            suite,
            experiment,
            method,
            env,
            setting,
            None,
            r.get("score"),
            r.get("std"),
            r.get("episodes"),
            returns=detail.get("scores"),
        )
        if readout != "ann":
            ratio_key = next((k for k in r if str(k).startswith("score /")), None)
            yield metric_row(
                suite,
                experiment,
                method,
                env,
                setting,
                None,
                "score_over_teacher",
                r.get(ratio_key) if ratio_key else None,
                "ratio",
                n=r.get("episodes"),
            )
            yield metric_row(
                suite,
                experiment,
                method,
                env,
                setting,
                None,
                "conversion_rate",
                r.get("conversion rate"),
                "fraction",
                n=r.get("agent steps"),
            )
            yield metric_row(
                suite, experiment, method, env, setting, None, "synops_per_action", r.get("SynOps/action"), "synops"
            )


def _conversion_continuous(suite: str, record: dict[str, Any]) -> Iterable[Row | None]:
    for r in record.get("rows") or []:
        teacher = str(r.get("teacher"))
        ann = r.get("T") in ("-", None)
        method = f"{teacher} teacher" if ann else "conversion"
        setting = {"teacher": teacher, "training_seeds": 1}
        if not ann:
            setting.update(T=r.get("T"), carry_over=r.get("carry_over"))
        yield returns_row(
            suite, "pendulum", method, "Pendulum-v1", setting, None, r.get("return"), r.get("std"), r.get("episodes")
        )
        if not ann:
            yield metric_row(
                suite,
                "pendulum",
                method,
                "Pendulum-v1",
                setting,
                None,
                "normalised_return",
                r.get("normalised return"),
                "fraction",
                n=r.get("episodes"),
            )
            yield metric_row(
                suite,
                "pendulum",
                method,
                "Pendulum-v1",
                setting,
                None,
                "paired_gap_to_teacher",
                r.get("paired gap to teacher"),
                "return",
                n=r.get("episodes"),
                stderr=r.get("gap s.e."),
            )
            yield metric_row(
                suite,
                "pendulum",
                method,
                "Pendulum-v1",
                setting,
                None,
                "action_error_over_range",
                r.get("action error / range"),
                "fraction",
            )
            yield metric_row(
                suite, "pendulum", method, "Pendulum-v1", setting, None, "synops_per_action", r.get("SynOps/action"), "synops"
            )


def _conversion_teachers(suite: str, record: dict[str, Any]) -> Iterable[Row | None]:
    for r in record.get("rows") or []:
        teacher = re.sub(r"^.*/teachers/|/best_model\.zip$|\.zip$", "", str(r.get("teacher")))
        for key, value in r.items():
            match = re.match(r"p([\d.]+) (floor|round) T=(\d+)$", str(key))
            if match:
                setting = {
                    "teacher": teacher,
                    "percentile": float(match.group(1)),
                    "rounding": match.group(2),
                    "T": int(match.group(3)),
                    "readout": "robust",
                    "training_seeds": 1,
                }
                yield metric_row(
                    suite,
                    "offline_agreement",
                    "conversion",
                    "CartPole-v1",
                    setting,
                    r.get("seed"),
                    "agreement",
                    value,
                    "fraction",
                    extra={"teacher_eval_return": r.get("eval return")},
                )


def _conversion_options(suite: str, record: dict[str, Any]) -> Iterable[Row | None]:
    for r in record.get("rows") or []:
        for key, value in r.items():
            match = re.match(r"agreement T=(\d+)$", str(key))
            if match:
                setting = {
                    "option": r.get("setting"),
                    "T": int(match.group(1)),
                    "percentile": r.get("percentile"),
                    "rounding": r.get("rounding"),
                    "readout": r.get("readout"),
                    "normalisation": r.get("normalisation"),
                    "training_seeds": 1,
                }
                yield metric_row(
                    suite, "offline_agreement", "conversion", "CartPole-v1", setting, None, "agreement", value, "fraction"
                )


def _nc64c_bitwidth(suite: str, record: dict[str, Any]) -> Iterable[Row | None]:
    for r in record.get("rows") or []:
        for key, inputs in (("input_12", "12-bit"), ("input_same", "as wide as the weights")):
            yield metric_row(
                suite,
                "bitwidth",
                str(r.get("network")),
                "-",
                {"weight_bits": r.get("weight_bits"), "input_bits": inputs},
                None,
                "agreement",
                r.get(key),
                "fraction",
                extra={"metric": record.get("metric")},
            )
    for network, value in (record.get("default_agreement") or {}).items():
        yield metric_row(
            suite,
            "bitwidth",
            network,
            "-",
            {
                "weight_bits": record.get("default_weight_bits"),
                "input_bits": record.get("default_input_bits"),
                "defaults": True,
            },
            None,
            "agreement",
            value,
            "fraction",
        )


def _nc64c_agreement(suite: str, record: dict[str, Any]) -> Iterable[Row | None]:
    for r in record.get("networks") or []:
        setting = {"kind": r.get("kind"), "T": r.get("timesteps"), "seed": r.get("seed")}
        for key in ("agreement_batched", "agreement_one_at_a_time"):
            yield metric_row(
                suite,
                "agreement",
                str(r.get("network")),
                "CartPole-v1",
                {**setting, "mode": key[10:]},
                r.get("seed"),
                "agreement",
                r.get(key),
                "fraction",
                n=r.get("n_held_out"),
                extra={"membrane_saturations": r.get("membrane_saturations"), "teacher_score": r.get("teacher_score")},
            )


def _score(text: Any) -> tuple[float | None, float | None]:
    match = re.match(r"\s*(-?[\d.]+)\s*±\s*([\d.]+)", str(text))
    return (float(match.group(1)), float(match.group(2))) if match else (num(text), None)


def _pipeline(suite: str, record: dict[str, Any], name: str) -> Iterable[Row | None]:
    env = "PongNoFrameskip-v4" if "pong" in name else "CartPole-v1"
    episodes = ((record.get("settings") or {}).get("evaluation") or {}).get("episodes")
    setting = {"training_seeds": 1, "config": "pong_pipeline_cpu.yml" if "pong" in name else "default"}
    for r in record.get("rows") or []:
        method = {"teacher": "teacher", "sdn": "SDN", "converted": "conversion", "cvtc": "DDQN+CVTC"}.get(
            r["agent"], r["agent"]
        )
        mean, std = _score(r.get("score"))
        yield returns_row(suite, "pipeline", method, env, setting, None, mean, std, episodes, extra={"kind": r.get("kind")})
        yield metric_row(suite, "pipeline", method, env, setting, None, "agreement", r.get("agreement"), "fraction")
        yield metric_row(
            suite, "pipeline", method, env, setting, None, "agreement_teacher_states",
            r.get("agreement (teacher's states)"), "fraction",
        )
        yield metric_row(
            suite, "pipeline", method, env, setting, None, "backend_agreement", r.get("backend agreement"), "fraction"
        )
        size = num(r.get("size (KB)"))
        yield metric_row(
            suite,
            "pipeline",
            method,
            env,
            setting,
            None,
            "parameter_bytes",
            1000 * size if size is not None else None,
            "bytes",
        )
        yield metric_row(suite, "pipeline", method, env, setting, None, "synops_per_action", r.get("SynOps/action"), "synops")
        yield metric_row(
            suite,
            "pipeline",
            method,
            env,
            setting,
            None,
            "energy_per_action",
            r.get("energy/action (µJ)"),
            "uJ",
            extra={"source": r.get("energy source")},
        )
    minutes = num(record.get("minutes")) or num(
        re.match(r"([\d.]+) minutes", str(record.get("headline")))
        and re.match(r"([\d.]+) minutes", str(record.get("headline"))).group(1)
    )
    yield metric_row(
        suite,
        "pipeline",
        "whole pipeline",
        env,
        setting,
        None,
        "wall_time",
        60 * minutes if minutes else None,
        "s",
        extra={"host": host_of(record.get("machine"))},
    )


Converter = Callable[[str, dict[str, Any], str], Iterable[Row | None]]


def _plain(function: Callable[[str, dict[str, Any]], Iterable[Row | None]]) -> Converter:
    return lambda suite, record, name: function(suite, record)


def _prefix(*prefixes: str) -> Callable[[str, dict[str, Any]], bool]:
    return lambda name, record: name.startswith(prefixes)


#: (test on the record's name and dict, converter), first match wins
CONVERTERS: list[tuple[Callable[[str, dict[str, Any]], bool], Converter]] = [
    (_prefix("ddqn_"), _plain(_ddqn)),
    (_prefix("cvtc_results"), _plain(_cvtc_results)),
    (_prefix("cvtc_cartpole_sweep"), _plain(_cvtc_sweep)),
    (_prefix("cvtc_speed"), _plain(_cvtc_speed)),
    (_prefix("conversion_speed"), _plain(_conversion_speed)),
    (_prefix("cartpole_conversion_options"), _plain(_conversion_options)),
    (lambda name, record: name == "cartpole_conversion_teachers", _plain(_conversion_teachers)),
    (_prefix("conversion_pendulum", "conversion_continuous"), _plain(_conversion_continuous)),
    (_prefix("conversion_", "cartpole_conversion_teacher_"), _conversion),
    (lambda name, record: name.startswith("sdn_") and "results" in record, _plain(_sdn_continuous)),
    (_prefix("sdn_pong"), lambda suite, record, name: _sdn_pong(suite, record, name)),
    (_prefix("sdn_"), _plain(_sdn_cartpole)),
    (_prefix("nc64c_bitwidth"), _plain(_nc64c_bitwidth)),
    (_prefix("nc64c_agreement"), _plain(_nc64c_agreement)),
    (_prefix("pipeline_"), _pipeline),
]


def rows_from_record(name: str, record: dict[str, Any]) -> tuple[str, list[Row]]:
    """The suite and rows of a script's result dict.

    :param name: the record's name (what the script would call its JSON file, without ``.json``)
    :param record: the dict the script built
    :return: ``(suite, rows)``; every row's ``extra["run"]`` holds the record's command and machine
    """
    suite = suite_of(name)
    convert = next((f for test, f in CONVERTERS if test(name, record)), None)
    if convert is None:
        raise ValueError(f"no converter for record {name!r}")
    made = convert(suite, record, name)
    source = _source(record, name)
    rows = []
    for row in made:
        if row is None:
            continue
        extra = {k: v for k, v in row.extra.items() if v is not None}
        rows.append(
            Row(
                row.suite,
                row.experiment,
                row.method,
                row.env,
                {k: v for k, v in row.setting.items() if v is not None},
                row.seed,
                row.metric,
                row.value,
                row.stderr,
                row.n,
                row.unit,
                {**extra, "run": extra.get("run", source)},
            )
        )
    return suite, rows


def save_rows(name: str, record: dict[str, Any], directory: str | Path | None = None) -> Path:
    """Convert a script's result dict and append its rows to its suite's records.

    :param name: the record's name (e.g. ``conversion_pong``)
    :param record: the dict the script built
    :param directory: the records folder (default ``benchmarks/records``)
    """
    suite, rows = rows_from_record(name, record)
    return append_rows(suite, rows, directory=directory)


def main(argv: list[str] | None = None) -> None:
    """``python benchmarks/result_rows.py FILE.json ...``: append the rows of saved result dicts."""
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    if not paths:
        raise SystemExit("usage: python benchmarks/result_rows.py RESULT.json [RESULT.json ...]")
    for path in paths:
        print(save_rows(path.stem, json.loads(path.read_text())))


if __name__ == "__main__":
    main()
