"""Write ``docs/results.md`` (and the README's results block) from ``benchmarks/results/*.json``.

    python benchmarks/report.py                       # docs/results.md + README.md's block
    python benchmarks/report.py --out /tmp/r.md --readme none

Every benchmark script writes one JSON record (``command``, ``machine``, optional ``target`` /
``headline`` / ``notes``, and its figures). Every measured figure in the report is read from those
records; the only numbers typed here are the papers' published figures (quoted from the seed texts
in ``../shared/seeds/``, with their line numbers) and the issues' "Must show" thresholds.

The report: a summary (one row per target of issues #2-#7: figure reached, met or not, source), one
section per paper with the paper's table beside ours in the same layout (SDN Tables 1 and 2, CVTC
Table 4, the conversion paper's Tables 1 and 2), the speed ratios, the NC64C bit-width sweep, the
pipeline, and an appendix with every record's command, machine, headline and notes. Records of old
and new formats are both read; a missing field shows as "—", an unreadable record is listed as such.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
OUT = ROOT / "docs" / "results.md"
README = ROOT / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
DASH = "—"

# --------------------------------------------------------------------------------------------------
# The papers' published figures, as they survive in the extracted seed texts (line numbers given).
# --------------------------------------------------------------------------------------------------
SDN_SEED = "../shared/seeds/000_1bf21b90d5ff1037.txt"  # Zhang et al., Spiking Distillation Network
CVTC_SEED = "../shared/seeds/001_625ccf54e8258e70.txt"  # Wu et al. 2022, CVTC temporal coding
CONV_SEED = "../shared/seeds/002_0eff23b58672577f.txt"  # Tan, Patel, Kozma: DQN -> SNN conversion

#: SDN "Tab1. Capacity of Teacher Network and Student Network" (lines 485-496), Pong
SDN_TABLE1 = [("Teacher network (DNN)", 10, 892), ("Student network (SNN)", 3, 50)]
#: SDN "Tab2. Power performance of different devices" (lines 530-536): model, device, power in W
SDN_TABLE2 = [("DNN", "Nvidia RTX2080", 64), ("DNN", "Nvidia RTX8000", 62), ("DNN", "Nvidia Jetson NX", 1.429),
              ("SDN", "PKU NC64C", 0.103)]
#: conversion paper, Pong (T = 500, 50 games): Table 1 line 212 (best percentile of 99.9 / 99.99) and
#: Table 2 line 298 (per percentile: SNN score with the robust firing rate, conversion rate in % with the
#: normal and the robust firing rate). (mean, std) pairs.
CONV_PAPER_PONG = [
    {"table": "Table 1 (line 212)", "percentile": "99.9 or 99.99 (best)", "dqn": (19.9, 1.2), "snn": (19.8, 1.3),
     "snn_pct": 99.7, "p_value": 0.448, "cr_robust": None, "cr_rate": None},
    {"table": "Table 2 (line 298)", "percentile": "99.9", "dqn": (19.9, 1.2), "snn": (19.4, 1.5),
     "snn_pct": None, "p_value": None, "cr_robust": (63.9, 1.7), "cr_rate": (59.9, 1.7)},
    {"table": "Table 2 (line 298)", "percentile": "99.99", "dqn": (19.9, 1.2), "snn": (19.8, 1.3),
     "snn_pct": None, "p_value": None, "cr_robust": (85.8, 1.2), "cr_rate": (72.0, 1.8)},
]
#: CVTC Table 4: the environments and methods it compares (lines 187, 209-211); its numbers are lost
CVTC_PAPER_ENVS = ["CartPole-v0", "MountainCar-v0"]
CVTC_METHODS = {"cvtc": "DDQN-SNN-CVTC", "mlp": "DDQN (MLP of the same size)", "ppo": "PPO"}

# --------------------------------------------------------------------------------------------------
# The issues' "Must show" thresholds (targets, not measurements).
# --------------------------------------------------------------------------------------------------
GOAL = {
    "ddqn_cartpole": 475.0,          # #2: DDQN CartPole-v1 mean over 100 episodes
    "cvtc_speed": 3.0,               # #3: CVTC fwd+bwd within 3x of the MLP on CPU
    "cvtc_CartPole-v1": 475.0,       # #3: DDQN+CVTC CartPole-v1
    "cvtc_MountainCar-v0": -120.0,   # #3: DDQN+CVTC MountainCar-v0
    "mostafa_gap": 0.02,             # #3: mostafa inference within 2 % of beta
    "conv_rate": 0.99,               # #4: CartPole conversion rate at T = 500
    "conv_score": 0.95,              # #4: CartPole score / DQN at T = 500
    "conv_speedup": 10.0,            # #4: vs a per-step spikingjelly IFNode loop, CPU
    "sdn_score": 0.95,               # #5: student / teacher score
    "sdn_size": 100.0,               # #5: parameter bytes ratio
    "sdn_latency": 5.0,              # #5: student latency lower than the teacher's on CPU
    "pipeline_minutes": 10.0,        # #7: the main command on the 2-core CPU
    "nc64c_agreement": 0.99,         # #6: integer vs float greedy-action agreement
}


# --------------------------------------------------------------------------------------------------
# Small helpers: safe access, formatting, tables
# --------------------------------------------------------------------------------------------------
def get(obj: Any, *keys: Any, default: Any = None) -> Any:
    """``obj[k1][k2]...`` or ``default`` when any step is missing."""
    for key in keys:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
        elif isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return default
    return obj


def num(value: Any) -> float | None:
    """A finite float, or None (strings such as "-", booleans, None, NaN)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out and abs(out) != float("inf") else None


def fmt(value: Any, digits: int = 1) -> str:
    """A table cell: numbers rounded, None as a dash."""
    if value is None or value == "":
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return DASH
        if abs(value) >= 1e5:
            return f"{value:.3g}"
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v, digits) for v in value)
    return str(value)


def pm(mean: Any, std: Any = None, digits: int = 1) -> str:
    """``mean ± std``."""
    mean, std = num(mean), num(std)
    if mean is None:
        return DASH
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def pct(fraction: Any, digits: int = 1) -> str:
    """A fraction as a percentage."""
    fraction = num(fraction)
    return DASH if fraction is None else f"{100 * fraction:.{digits}f} %"


def times(value: Any, digits: int = 1) -> str:
    """A ratio as ``N×``."""
    value = num(value)
    return DASH if value is None else f"{value:.{digits}f}×"


def kb(n_bytes: Any) -> str:
    n_bytes = num(n_bytes)
    return DASH if n_bytes is None else f"{n_bytes / 1000:.1f}"


def _cell(value: Any) -> str:
    return fmt(value).replace("|", "\\|").replace("\n", " ")


def table(columns: list[str], rows: Iterable[Iterable[Any]]) -> str:
    """A markdown table (cells already formatted, or formatted by :func:`fmt`)."""
    rows = [list(row) for row in rows]
    if not rows:
        return "_no rows in the current records_"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def dict_table(rows: list[dict[str, Any]]) -> str:
    """Rows of flat dicts as a table (columns in first-seen order, floats to 4 significant digits): the
    generic layout, for records without a dedicated one."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    return table(columns, ([f"{v:.4g}" if isinstance(v, float) else v for v in (row.get(c) for c in columns)]
                           for row in rows))


def flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted columns; long lists and settings dropped (kept in the JSON)."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if key in ("settings", "student_settings", "firing_rates", "details") or str(key).endswith("_path"):
            continue
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, list) and (len(value) > 4 or any(isinstance(v, (dict, list)) for v in value)):
            continue
        else:
            flat[name] = value
    return flat


def status(met: bool | None, partly: bool = False) -> str:
    if met is None:
        return "reported"
    if met:
        return "met"
    return "partly met" if partly else "**NOT met**"


def count_status(hits: int, total: int) -> str:
    """met (all), partly met (some), NOT met (none), not run (no data)."""
    if total == 0:
        return "not run"
    return status(hits == total, partly=hits > 0)


# --------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------
def machine_text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items() if v not in (None, ""))
    return DASH if value in (None, "") else str(value)


def device_of(rec: dict[str, Any]) -> str:
    """cuda or cpu: the record's ``device``, else a GPU named in its machine text."""
    device = rec.get("device")
    if device:
        return str(device)
    return "cuda" if re.search(r"\bGPU\b", machine_text(rec.get("machine"))) else "cpu"


def machine_label(rec: dict[str, Any], device: str | None = None, threads: bool = False) -> str:
    """Short name of the machine a record ran on (the full text is in the appendix)."""
    text = machine_text(rec.get("machine"))
    low = text.lower()
    if any(s in low for s in ("h100", "h200", "gpu", "xeon", "+cu", "cpu_count: 16", "16 cores")):
        base = "H100 box"
    elif any(s in low for s in ("amd epyc", "2 cores", "cpu_count: 2")):
        base = "2-core CPU"
    else:
        base = text[:40]
    device = device or device_of(rec)
    label = f"{base}, {'GPU' if device.startswith('cuda') else 'CPU'}" if base == "H100 box" else base
    if threads:
        match = re.search(r"(\d+) torch thread", text) or re.search(r"torch_threads: (\d+)", text)
        if match:
            label += f", {match.group(1)} thr."
    return label


def kind_of(stem: str) -> str:
    stem = stem.lower()
    for prefix, kind in (("cvtc_results", "cvtc_results"), ("cvtc_speed", "cvtc_speed"),
                         ("conversion_speed", "conversion_speed"), ("conversion", "conversion"), ("sdn", "sdn"),
                         ("ddqn", "ddqn"), ("nc64c", "nc64c"), ("pipeline", "pipeline")):
        if stem.startswith(prefix):
            return kind
    return "other"


def load_records(results: Path = RESULTS) -> list[dict[str, Any]]:
    """Every ``*.json`` under ``results``, sorted by name, with ``_file``, ``_kind`` and ``_anchor``
    added. A file that does not parse (being rewritten, say) is retried once, then kept as a record with
    ``_error`` so that the report lists it."""
    records = []
    for path in sorted(Path(results).glob("*.json")):
        record: Any = None
        error = None
        for attempt in range(2):
            try:
                record = json.loads(path.read_text())
                error = None
                break
            except (OSError, ValueError) as exc:  # mid-write, or removed meanwhile
                error = f"{type(exc).__name__}: {exc}"
                if attempt == 0:
                    time.sleep(0.5)
        if not isinstance(record, dict):
            record = {"_error": error or "not a JSON object"}
        record["_file"] = path.name
        record["_kind"] = "broken" if "_error" in record else kind_of(path.stem)
        record["_anchor"] = "rec-" + re.sub(r"[^a-z0-9_-]+", "-", path.stem.lower())
        records.append(record)
    return records


def src(rec: dict[str, Any], link: str = "") -> str:
    """The record's file, linked to its appendix entry."""
    return f"[{rec['_file']}]({link}#{rec['_anchor']})"


def title_of(rec: dict[str, Any]) -> str:
    """The record's title; SDN records have none: their env, students and device."""
    if rec.get("title"):
        return str(rec["title"])
    if rec.get("_kind") == "sdn":
        students = rec.get("rows") if isinstance(rec.get("rows"), dict) else {
            f"{name} teacher": 0 for name in rec.get("teachers") or {}}
        return f"SDN on {env_of(rec)}: {', '.join(students) or 'no student'} ({device_of(rec)})"
    return str(rec.get("benchmark") or Path(rec["_file"]).stem).replace("_", " ")


def commands(rec: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, command) pairs: the record's ``command`` and every other command it keeps."""
    out = []
    for key, value in rec.items():
        if isinstance(value, str) and (key == "command" or key.endswith("_command")):
            out.append((key, value))
        elif isinstance(value, dict) and isinstance(value.get("command"), str):
            out.append((f"{key}.command", value["command"]))
    return out


def machines(rec: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for key, value in rec.items():
        if key == "machine" or key.endswith("_machine"):
            out.append((key, machine_text(value)))
        elif isinstance(value, dict) and "machine" in value:
            out.append((f"{key}.machine", machine_text(value["machine"])))
    return out


def env_of(rec: dict[str, Any]) -> str:
    if rec.get("env"):
        return str(rec["env"])
    text = " ".join(str(rec.get(k, "")) for k in ("title", "command", "benchmark")) + " " + rec["_file"]
    match = re.search(r"\b([A-Z][A-Za-z]+(?:NoFrameskip)?-v\d)\b", text)
    if match:
        return match.group(1)
    low = text.lower()
    return "PongNoFrameskip-v4" if "pong" in low else "CartPole-v1" if "cartpole" in low else DASH


def of(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in records if r["_kind"] == kind]


# --------------------------------------------------------------------------------------------------
# Normalised views of each family of records
# --------------------------------------------------------------------------------------------------
def cvtc_seed_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (env, method, seed): the score of the best checkpoint (the zoo's EvalCallback
    ``best_model.zip``, what ``--load-best`` and the pipeline deploy, and the closest to the paper's
    "best reward of each run"; the final model where no best one was evaluated) with the
    Mostafa-inference score of the same model and the final model's score beside it."""
    by_key: dict[tuple, dict[str, dict]] = {}
    for rec in of(records, "cvtc_results"):
        for row in rec.get("rows") or []:
            if not isinstance(row, dict) or num(row.get("mean_reward")) is None:
                continue
            key = (row.get("env", env_of(rec)), row.get("row", DASH), row.get("seed"))
            by_key.setdefault(key, {})[f"{row.get('model', DASH)}/{row.get('inference', 'default')}"] = {**row, "_rec": rec}
    out = []
    for (env, method, seed), found in by_key.items():
        model = next((m for m in ("best", "final", "last") if any(k.startswith(m + "/") for k in found)),
                     next(iter(found)).split("/")[0])
        final = next((v for k, v in found.items() if k.split("/")[0] in ("final", "last") and not k.endswith("/mostafa")),
                     None)
        main = next((v for k, v in found.items() if k.startswith(model + "/") and not k.endswith("/mostafa")), None)
        mostafa = found.get(f"{model}/mostafa")
        if main is None:
            continue
        out.append({"env": env, "method": method, "seed": seed, "model": model, "mean": num(main.get("mean_reward")),
                    "std": num(main.get("std_reward")), "episodes": main.get("episodes"),
                    "mostafa": num(get(mostafa, "mean_reward")), "target": num(main.get("target")),
                    "final": num(get(final, "mean_reward")) if final is not None and model == "best" else None,
                    "command": main.get("command"), "rec": main["_rec"]})
    return sorted(out, key=lambda r: (r["env"], list(CVTC_METHODS).index(r["method"]) if r["method"] in CVTC_METHODS
                                      else 99, str(r["method"]), str(r["seed"])))


def conversion_rows(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """A conversion record's rows (old and new field names) as dicts with fixed keys."""
    out = []
    rows = rec.get("rows") or rec.get("details") or []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        ratio_key = next((k for k in row if str(k).startswith("score /")), None)
        t = row.get("T", row.get("timesteps"))
        readout = row.get("readout", DASH)
        out.append({
            "T": None if readout == "ann" or num(t) in (None, 0) else int(num(t)),
            "readout": readout,
            "score": num(row.get("score", row.get("mean_score"))),
            "std": num(row.get("std", row.get("std_score"))),
            "episodes": row.get("episodes", len(row["scores"]) if isinstance(row.get("scores"), list) else None),
            "ratio": num(row.get(ratio_key)) if ratio_key else None,
            "cr": num(row.get("conversion rate", row.get("conversion_rate"))),
            "steps": row.get("agent steps", row.get("n_steps")),
            "synops": num(row.get("SynOps/action", row.get("synops_per_action"))),
            "s_action": num(row.get("s/action", row.get("seconds_per_action"))),
        })
    return out


def conversion_meta(rec: dict[str, Any]) -> dict[str, Any]:
    """Env, teacher, percentile and the ANN row of a conversion record."""
    text = " ".join([rec.get("command", ""), *[str(n) for n in rec.get("notes") or []]])
    match = re.search(r"--percentile\s+([\d.]+)", text) or re.search(r"percentile ([\d.]+)", text)
    teacher = re.search(r"Conversion:\s*(.+?)\s*->", rec.get("title", ""))
    rows = conversion_rows(rec)
    ann = next((r for r in rows if r["readout"] == "ann"), None)
    if teacher:
        teacher_name = teacher.group(1)
    else:
        keys = [k for row in rec.get("rows") or [] if isinstance(row, dict) for k in row if str(k).startswith("score /")]
        teacher_name = keys[0].split("/", 1)[1].strip() if keys else DASH
    return {"env": env_of(rec), "teacher": teacher_name, "percentile": match.group(1) if match else None,
            "ann": ann, "rows": rows}


def conversion_runs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (record, T): the robust row's score, both readouts' conversion rates."""
    runs = []
    for rec in of(records, "conversion"):
        meta = conversion_meta(rec)
        for t in sorted({r["T"] for r in meta["rows"] if r["T"] is not None}):
            at_t = {r["readout"]: r for r in meta["rows"] if r["T"] == t}
            main = at_t.get("robust") or next(iter(at_t.values()))
            runs.append({**meta, "rec": rec, "T": t, "main": main, "readout": main["readout"],
                         "cr_robust": get(at_t, "robust", "cr"), "cr_rate": get(at_t, "rate", "cr")})
    return sorted(runs, key=lambda r: (r["env"], r["T"], r["rec"]["_file"]))


def sdn_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every distilled student of every SDN record (CartPole layout: one per teacher; Pong layout: one
    per row of the ablation), with the teacher's figures and the latency beside it."""
    out = []
    for rec in of(records, "sdn"):
        env = env_of(rec)
        device = device_of(rec)
        latency_on_cpu = bool(rec.get("latency") or rec.get("latency_command")) or device == "cpu"
        if isinstance(rec.get("teachers"), dict):  # CartPole layout
            for name, t in rec["teachers"].items():
                if not isinstance(t, dict):
                    continue
                settings = t.get("student_settings") or {}
                arch = get(settings, "policy_kwargs", "net_arch")
                curve = t.get("student_curve") or []
                out.append({
                    "rec": rec, "env": env, "teacher": t.get("teacher_algo") or str(name).upper(),
                    "variant": ", ".join(x for x in (
                        f"T={get(settings, 'policy_kwargs', 'n_steps')}" if get(settings, "policy_kwargs", "n_steps") else "",
                        str(settings.get("distillation_loss", ""))) if x) or DASH,
                    "layers": len(arch) + 1 if isinstance(arch, list) else None,
                    "steps": get(curve, -1, 0), "device": device,
                    "teacher_mean": num(get(t, "teacher", "mean")), "teacher_std": num(get(t, "teacher", "std")),
                    "student_mean": num(get(t, "student", "mean")), "student_std": num(get(t, "student", "std")),
                    "episodes": len(get(t, "student", "rewards") or []) or None,
                    "agreement": num(get(t, "student", "agreement")),
                    "student_bytes": t.get("student_bytes"), "teacher_bytes": t.get("teacher_bytes_acting"),
                    "size_ratio": num(t.get("size_ratio_acting")),
                    "lat_student": num(t.get("latency_ms_student")), "lat_teacher": num(t.get("latency_ms_teacher")),
                    "lat_ratio": num(t.get("latency_ratio")), "lat_cpu": latency_on_cpu,
                    "distill_sps": num(get(rec, "speed", "distillation_steps_per_s")) if name == "dqn" else None,
                    "steps_to_95": t.get("student_steps_to_95pct"),
                })
        elif isinstance(rec.get("rows"), dict):  # Pong layout: rows of the ablation
            for name, r in rec["rows"].items():
                if not isinstance(r, dict):
                    continue
                kwargs = get(r, "settings", "policy_kwargs") or {}
                n_layers = sum(len(kwargs.get(k) or []) for k in ("conv_arch", "net_arch")) + 1 if kwargs else None
                out.append({
                    "rec": rec, "env": env,
                    "teacher": rec.get("teacher_algo") or Path(str(rec.get("teacher_path", DASH))).name,
                    "variant": str(name), "layers": n_layers, "steps": r.get("steps"), "device": device,
                    "teacher_mean": num(get(rec, "teacher", "mean")), "teacher_std": num(get(rec, "teacher", "std")),
                    "student_mean": num(get(r, "student", "mean")), "student_std": num(get(r, "student", "std")),
                    "episodes": len(get(r, "student", "rewards") or []) or None,
                    "agreement": num(get(r, "student", "agreement")),
                    "student_bytes": r.get("student_bytes"), "teacher_bytes": rec.get("teacher_bytes_acting"),
                    "size_ratio": num(r.get("size_ratio_acting")),
                    "lat_student": num(r.get("latency_ms_student")),
                    "lat_teacher": num(r.get("latency_ms_teacher", rec.get("latency_ms_teacher"))),
                    "lat_ratio": num(r.get("latency_speedup")), "lat_cpu": latency_on_cpu,
                    "distill_sps": num(r.get("distillation_steps_per_s")), "steps_to_95": None,
                })
    for row in out:  # a record without the teacher's score: the one of the same teacher file elsewhere
        row["teacher_from"] = None
        if row["teacher_mean"] is None:
            other = next((o for o in out if o["env"] == row["env"] and o["teacher"] == row["teacher"]
                          and o["teacher_mean"] is not None and o.get("teacher_from") is None), None)
            if other:
                row.update(teacher_mean=other["teacher_mean"], teacher_std=other["teacher_std"],
                           teacher_from=other["rec"]["_file"])
    for row in out:
        if row["lat_ratio"] is None and row["lat_student"] and row["lat_teacher"] is not None:
            row["lat_ratio"] = row["lat_teacher"] / row["lat_student"]
        if row["size_ratio"] is None and num(row["student_bytes"]) and num(row["teacher_bytes"]) is not None:
            row["size_ratio"] = num(row["teacher_bytes"]) / num(row["student_bytes"])
    return out


def cvtc_speed_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for rec in of(records, "cvtc_speed"):
        rows = [r for r in rec.get("rows") or [] if isinstance(r, dict)]
        mlp = next((r for r in rows if r.get("candidate") == "mlp"), {})
        for row in rows:
            if row.get("candidate") == "mlp":
                continue
            out.append({"rec": rec, "device": device_of(rec), "candidate": row.get("candidate", DASH),
                        "mlp_ms": num(mlp.get("wall_ms_median")), "ms": num(row.get("wall_ms_median")),
                        "wall": num(row.get("ratio_vs_mlp_wall")), "cpu": num(row.get("ratio_vs_mlp_cpu"))})
    return out


def conversion_speed_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every (ours vs a baseline) timing of the conversion speed records (CPU script and GPU script)."""
    out = []
    for rec in of(records, "conversion_speed"):
        rows = [r for r in rec.get("rows") or [] if isinstance(r, dict)]
        if any("simulation" in r for r in rows):  # bench_conversion_speed.py: one row per simulation
            ours = next((r for r in rows if num(r.get("fast / this")) == 1.0), rows[0] if rows else {})
            for row in rows:
                if row is ours:
                    continue
                out.append({"rec": rec, "device": device_of(rec), "batch": rec.get("batch"),
                            "baseline": row.get("simulation", DASH), "ours_s": num(ours.get("median s/action")),
                            "base_s": num(row.get("median s/action")), "speedup": num(row.get("fast / this")),
                            "mismatch": row.get("spike mismatches vs fast (float32)")})
        else:  # bench_conversion_speed_gpu.py: one row per batch size
            for row in rows:
                batch = num(row.get("batch")) or 1
                base = num(row.get("per_step_loop_seconds"))
                out.append({"rec": rec, "device": device_of(rec), "batch": row.get("batch"),
                            "baseline": "per-step loop (plain torch, IFNode semantics)",
                            "ours_s": num(row.get("fast_seconds_per_action")),
                            "base_s": base / batch if base is not None else None, "speedup": num(row.get("speedup")),
                            "mismatch": row.get("spike_mismatches_float32")})
    return out


# --------------------------------------------------------------------------------------------------
# Summary: one row per target of the issues
# --------------------------------------------------------------------------------------------------
# C901: the complexity is the sum of small per-target closures that share ``records`` and ``link``
def summary_rows(records: list[dict[str, Any]], link: str = "") -> list[list[str]]:  # noqa: C901
    """[issue, target, figure reached, status, source] per target; a target whose records fail to
    read shows the error instead of stopping the report."""
    def sources(recs: Iterable[dict[str, Any]]) -> str:
        seen: dict[str, dict] = {}
        for rec in recs:
            seen.setdefault(rec["_file"], rec)
        return ", ".join(src(r, link) for r in seen.values()) or DASH

    def cvtc_speed_cpu():
        rows = [r for r in cvtc_speed_rows(records) if r["device"] == "cpu" and (r["wall"] or r["cpu"]) is not None]
        if not rows:
            return DASH, "not run", []
        best = min(rows, key=lambda r: min(x for x in (r["wall"], r["cpu"], float("inf")) if x is not None))
        figure = "; ".join(f"{r['candidate']} {times(r['wall'])} wall" + (f", {times(r['cpu'])} CPU time" if r["cpu"] else "")
                           + f" ({machine_label(r['rec'], threads=True)})"
                           for r in rows if r["candidate"] == best["candidate"])
        ratio = min(x for x in (best["wall"], best["cpu"]) if x is not None)
        return figure, status(ratio <= GOAL["cvtc_speed"]), [r["rec"] for r in rows]

    def cvtc_speed_gpu():
        rows = [r for r in cvtc_speed_rows(records) if r["device"].startswith("cuda") and r["wall"] is not None]
        if not rows:
            return DASH, "not run", []
        best = min(rows, key=lambda r: r["wall"] if r["wall"] is not None else float("inf"))
        return (f"{best['candidate']} {times(best['wall'], 2)} wall ({machine_label(best['rec'])})", "reported",
                [r["rec"] for r in rows])

    def cvtc_score(env: str):
        def compute():
            seeds = [r for r in cvtc_seed_rows(records) if r["env"] == env and r["method"] == "cvtc"]
            if not seeds:
                return "not run", "not run", []
            goal = seeds[0]["target"] if seeds[0]["target"] is not None else GOAL[f"cvtc_{env}"]
            hits = sum(r["mean"] >= goal for r in seeds)
            mean = statistics.mean(r["mean"] for r in seeds)
            episodes = "/".join(str(e) for e in dict.fromkeys(r["episodes"] for r in seeds))
            figure = (f"mean over {len(seeds)} seed(s) {mean:.1f} ({episodes} episodes each); "
                      f"{hits}/{len(seeds)} seeds ≥ {goal:g} ("
                      + ", ".join(f"s{r['seed']}: {r['mean']:.1f}" for r in seeds) + ")")
            return figure, count_status(hits, len(seeds)), [r["rec"] for r in seeds]
        return compute

    def mostafa():
        seeds = [r for r in cvtc_seed_rows(records) if r["method"] == "cvtc" and r["mostafa"] is not None and r["mean"]]
        if not seeds:
            return DASH, "not run", []
        gaps = [(r, (r["mostafa"] - r["mean"]) / abs(r["mean"])) for r in seeds]  # > 0: Mostafa scores higher
        hits = sum(abs(gap) <= GOAL["mostafa_gap"] for _, gap in gaps)
        figure = f"{hits}/{len(gaps)} seeds within {100 * GOAL['mostafa_gap']:g} % (Mostafa − β: " + ", ".join(
            f"{r['env']} s{r['seed']}: {100 * gap:+.1f} %" for r, gap in gaps) + ")"
        return figure, count_status(hits, len(gaps)), [r["rec"] for r in seeds]

    def conv_cartpole():
        runs = [r for r in conversion_runs(records) if r["env"].startswith("CartPole")]
        at = [r for r in runs if r["T"] == 500 and r["readout"] == "robust"]
        if not at:
            return DASH, "not run", []
        met = any((r["cr_robust"] or 0) >= GOAL["conv_rate"] and (r["main"]["ratio"] or 0) >= GOAL["conv_score"] for r in at)
        figure = "T=500: " + "; ".join(f"p{r['percentile'] or '?'} ({fmt(r['main']['episodes'])} episodes): "
                                      f"CR {pct(r['cr_robust'])}, "
                                      f"score {pct(r['main']['ratio'], 0)} of DQN"
                                      for r in at)
        options = [(rec, row) for rec in of(records, "conversion") if "CartPole" in env_of(rec)
                   for row in rec.get("rows") or [] if isinstance(row, dict) and row.get("T") == 500
                   and not str(row.get("readout")).startswith("rate") and (row.get("rounding"), row.get("readout")) not in
                   ((None, "robust"), ("floor", "robust"), ("-", "robust"))]
        if options:
            def label(row: dict[str, Any]) -> str:
                readout = str(row["readout"])
                return readout if "(" in readout else f"{readout} ({row.get('rounding', '?')})"

            figure += "; options (not the paper's method): " + ", ".join(
                f"{label(row)} CR {pct(num(row.get('conversion rate')))} ({fmt(row.get('episodes'))} episodes)"
                for _, row in options)
        longer = [r for r in runs if r["T"] > 500 and r["readout"] == "robust"]
        if longer:
            figure += " (" + "; ".join(f"T={r['T']}: CR {pct(r['cr_robust'])}, score {pct(r['main']['ratio'], 0)}"
                                       for r in longer) + ")"
        screens = [rec for rec in records if rec.get("benchmark") == "cartpole_conversion_teachers"]
        figure += "".join(f"; across teachers (offline agreement): {rec.get('headline')}" for rec in screens)
        return figure, status(met), [r["rec"] for r in at + longer] + screens

    def robust_vs_rate():
        pairs = [r for r in conversion_runs(records) if r["cr_robust"] is not None and r["cr_rate"] is not None]
        if not pairs:
            return DASH, "not run", []
        hits = sum(r["cr_robust"] > r["cr_rate"] for r in pairs)
        small = min(pairs, key=lambda r: r["T"])
        figure = (f"robust > rate in {hits}/{len(pairs)} (run, T) pairs; smallest T: {small['env']} T={small['T']}: "
                  f"{pct(small['cr_robust'])} vs {pct(small['cr_rate'])}")
        return figure, count_status(hits, len(pairs)), [r["rec"] for r in pairs]

    def conv_pong():
        runs = [r for r in conversion_runs(records) if "Pong" in r["env"]]
        if not runs:
            return "not run", "not run", []
        parts = []
        for t in sorted({r["T"] for r in runs}):
            here = [r for r in runs if r["T"] == t]
            parts.append(f"T={t}: CR " + "/".join(pct(r["cr_robust"] if r["cr_robust"] is not None else r["main"]["cr"], 2)
                                                  for r in here)
                         + ", score " + "/".join(f"{fmt(r['main']['score'])} vs {fmt(get(r, 'ann', 'score'))}" for r in here)
                         + f" ({'/'.join(fmt(r['main']['episodes']) for r in here)} episodes)")
        paper = CONV_PAPER_PONG[0]
        return (f"{'; '.join(parts)} — paper: SNN {paper['snn'][0]} vs DQN {paper['dqn'][0]}", "reported",
                [r["rec"] for r in runs])

    def conv_speed():
        rows = [r for r in conversion_speed_rows(records) if r["device"] == "cpu" and "spikingjelly" in str(r["baseline"])]
        loop = [r for r in rows if "per-step" in str(r["baseline"])]
        if not loop:
            return DASH, "not run", []
        best = max(loop, key=lambda r: r["speedup"] or 0)
        other = [r for r in rows if r is not best and "ann2snn" in str(r["baseline"])]
        figure = f"{times(best['speedup'])} vs the per-step IFNode loop ({machine_label(best['rec'], threads=True)})"
        figure += "".join(f"; {times(r['speedup'])} vs ann2snn" for r in other)
        return figure, status((best["speedup"] or 0) >= GOAL["conv_speedup"]), [r["rec"] for r in rows]

    def conv_speed_gpu():
        rows = [r for r in conversion_speed_rows(records) if r["device"].startswith("cuda")]
        if not rows:
            return DASH, "not run", []
        figure = "; ".join(f"batch {r['batch']}: {times(r['speedup'])} vs a per-step loop" for r in rows)
        return figure + f" ({machine_label(rows[0]['rec'])})", "reported", [r["rec"] for r in rows]

    def sdn_cartpole(teacher: str):
        def compute():
            rows = [r for r in sdn_rows(records) if r["env"].startswith("CartPole") and r["teacher"].upper() == teacher
                    and r["student_mean"] is not None]
            if not rows:
                return "not run", "not run", []
            r = rows[-1]
            ratio = share(r)
            met = ratio is not None and ratio >= GOAL["sdn_score"] and (r["size_ratio"] or 0) >= GOAL["sdn_size"]
            figure = (f"student {pm(r['student_mean'], r['student_std'])} vs teacher {fmt(r['teacher_mean'])} "
                      f"({pct(ratio, 0)}), "
                      f"{times(r['size_ratio'], 0)} fewer bytes ({kb(r['student_bytes'])} vs {kb(r['teacher_bytes'])} KB)")
            return figure, status(met), [r["rec"]]
        return compute

    def sdn_steps():
        rows = [r for r in sdn_rows(records) if r["steps_to_95"] is not None]
        if not rows:
            return DASH, "not run", []
        rec = rows[0]["rec"]
        dqn = rec.get("dqn_from_scratch") or {}
        figure = ("student at ≥ 95 % after " + ", ".join(f"{fmt(r['steps_to_95'])} ({r['teacher']} teacher)" for r in rows)
                  + f" env steps; DQN from scratch first ≥ {fmt(num(dqn.get('target')), 0)}"
                  + f" at {fmt(dqn.get('first_step_at_target'))}"
                  + f" ({fmt(dqn.get('evals_at_target'))}/{fmt(dqn.get('evals'))} evaluations at target)")
        return figure, "reported", [r["rec"] for r in rows]

    def sdn_pong():
        rows = [r for r in sdn_rows(records) if "Pong" in r["env"] and r["student_mean"] is not None]
        if not rows:
            return "not run", "not run", []
        best = max(rows, key=lambda r: r["student_mean"])
        figure = (f"best: {best['variant']} {pm(best['student_mean'], best['student_std'])} "
                  f"vs teacher {pm(best['teacher_mean'], best['teacher_std'])}, "
                  f"agreement {pct(best['agreement'])}, {kb(best['student_bytes'])} vs {kb(best['teacher_bytes'])} KB "
                  f"({times(best['size_ratio'], 0)}; {fmt(best['steps'])} steps, {machine_label(best['rec'])})")
        frames = [r for r in rows if r["variant"].startswith("frames")]
        if frames:
            fbest = max(frames, key=lambda r: r["student_mean"])
            figure += f"; best frames-one-per-step row: {fbest['variant']} {pm(fbest['student_mean'], fbest['student_std'])}"
        figure += f" — paper Table 1: {SDN_TABLE1[0][2]} KB → {SDN_TABLE1[1][2]} KB (5 KB in its prose)"
        return figure, "reported", [r["rec"] for r in rows]

    def sdn_latency():
        rows = [r for r in sdn_rows(records) if r["lat_cpu"] and r["lat_ratio"] is not None]
        if not rows:
            return DASH, "not run", []
        parts = []
        for env in sorted({r["env"] for r in rows}):
            here = [r for r in rows if r["env"] == env]
            lo, hi = min(r["lat_ratio"] for r in here), max(r["lat_ratio"] for r in here)
            parts.append(f"{env}: teacher/student {times(lo, 2)}" + (f"–{times(hi, 2)}" if hi != lo else "")
                         + f" ({len(here)} students)")
        hits = sum(r["lat_ratio"] >= GOAL["sdn_latency"] for r in rows)
        return "; ".join(parts), count_status(hits, len(rows)), [r["rec"] for r in rows]

    def sdn_sps():
        recs = [r for r in of(records, "sdn") if get(r, "speed", "dqn_steps_per_s") is not None]
        if not recs:
            return DASH, "not run", []
        rec = recs[-1]
        d, q = num(get(rec, "speed", "distillation_steps_per_s")), num(get(rec, "speed", "dqn_steps_per_s"))
        figure = (f"{env_of(rec)}: distillation {fmt(d, 0)} vs DQN {fmt(q, 0)} gradient steps/s "
                  f"({times(d / q if d and q else None, 2)}, {machine_label(rec)})")
        return figure, "reported", [rec]

    def pipeline():
        recs = [rec for rec in of(records, "pipeline") if "CartPole" in str(rec.get("title", "")) + str(rec.get("command", ""))
                or rec.get("benchmark") == "pipeline_cartpole"]
        if not recs:
            return "not run", "not run", []
        rec = recs[-1]
        seconds = num(rec.get("seconds"))
        match = re.search(r"([\d.]+) minutes", str(rec.get("headline", "")))
        minutes = seconds / 60 if seconds is not None else num(match.group(1)) if match else None
        if minutes is None:
            return DASH, "reported", [rec]
        return f"{minutes:.1f} min ({machine_label(rec)})", status(minutes < GOAL["pipeline_minutes"]), [rec]

    def pipeline_atari():
        recs = [rec for rec in of(records, "pipeline") if "NoFrameskip" in str(rec.get("title", ""))]
        if not recs:
            return "not run", "not run", []
        rec = recs[-1]
        return f"{rec.get('headline', DASH)} ({machine_label(rec)})", "reported", [rec]

    def ddqn():
        recs = of(records, "ddqn")
        rows = [(rec, r) for rec in recs for r in rec.get("rows") or []
                if isinstance(r, dict) and r.get("model") in ("last", "final") and num(r.get("mean_reward")) is not None]
        if not rows:
            return DASH, "not run", recs
        hits = sum(num(r["mean_reward"]) >= GOAL["ddqn_cartpole"] for _, r in rows)
        figure = ", ".join(f"seed {r.get('seed')}: {pm(r['mean_reward'], r.get('std_reward'))}" for _, r in rows)
        return figure, count_status(hits, len(rows)), [rec for rec, _ in rows]

    def nc64c():
        recs = [r for r in of(records, "nc64c") if isinstance(r.get("default_agreement"), dict)]
        if not recs:
            return DASH, "not run", []
        rec = recs[-1]
        agreement = {k: num(v) for k, v in rec["default_agreement"].items() if num(v) is not None}
        judged = {k: v for k, v in agreement.items() if "cartpole" in k.lower()} or agreement
        hits = sum(v >= GOAL["nc64c_agreement"] for v in judged.values())
        figure = ", ".join(f"{k}: {v:.2f}" for k, v in judged.items())
        return figure, count_status(hits, len(judged)), [rec]

    targets: list[tuple[str, str, Callable[[], tuple[str, str, list]]]] = [
        ("#2", "DDQN CartPole-v1 ≥ 475 over 100 episodes", ddqn),
        ("#3", "CVTC 80→800→2 fwd+bwd, batch 32, within 3× of the MLP on CPU", cvtc_speed_cpu),
        ("#3", "… the same ratio on a GPU (report)", cvtc_speed_gpu),
        ("#3", "DDQN+CVTC CartPole-v1 ≥ 475 (≥ 100 episodes)", cvtc_score("CartPole-v1")),
        ("#3", "DDQN+CVTC MountainCar-v0 ≥ −120 (≥ 100 episodes)", cvtc_score("MountainCar-v0")),
        ("#3", "Mostafa inference within 2 % of beta", mostafa),
        ("#4", "CartPole-v1: conversion rate ≥ 99 % and score ≥ 95 % of the DQN at T = 500", conv_cartpole),
        ("#4", "robust readout beats rate on conversion rate at small T", robust_vs_rate),
        ("#4", "Pong: conversion rate and score vs the teacher at T = 100 and 500", conv_pong),
        ("#4", "NatureCNN T = 500 batch 1 CPU: ≥ 10× faster than spikingjelly IFNode per-step loop", conv_speed),
        ("#4", "… GPU figures (report)", conv_speed_gpu),
        ("#5", "CartPole, DQN teacher: student ≥ 95 % of teacher, ≥ 100× fewer bytes", sdn_cartpole("DQN")),
        ("#5", "CartPole, PPO teacher: student ≥ 95 % of teacher, ≥ 100× fewer bytes", sdn_cartpole("PPO")),
        ("#5", "environment steps the student took vs training a DQN", sdn_steps),
        ("#5", "Pong: student vs teacher score, agreement, size (paper Table 1)", sdn_pong),
        ("#5", "student per-action latency ≥ 5× lower than the teacher's on CPU", sdn_latency),
        ("#5", "distillation steps/s vs DQN training steps/s", sdn_sps),
        ("#6", "NC64C integer model agreement ≥ 0.99 at the default widths", nc64c),
        ("#7", "main command (whole pipeline, CartPole-v1) under 10 minutes on the 2-core CPU", pipeline),
        ("#7", "the same pipeline on Atari (report)", pipeline_atari),
    ]
    rows = []
    for issue, target, compute in targets:
        try:
            figure, state, used = compute()
            rows.append([issue, target, figure, state, sources(used)])
        except Exception as exc:  # a record of an unexpected shape: say so, keep going
            rows.append([issue, target, DASH, f"could not read the records ({type(exc).__name__}: {exc})", DASH])
    return rows


SUMMARY_COLUMNS = ["issue", "target", "reached", "status", "source"]


# --------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------
def share(row: dict[str, Any]) -> float | None:
    """Student score / teacher score, when both are ≥ 0 (a ratio of Pong's negative scores means nothing)."""
    s, t = row["student_mean"], row["teacher_mean"]
    return s / t if s is not None and t and s >= 0 and t > 0 else None


def section_sdn(records: list[dict[str, Any]]) -> list[str]:
    rows = sdn_rows(records)
    out = ["## SDN: spiking distillation (Zhang et al.)", "",
           f"Seed text: `{SDN_SEED}`. Its figures and equations are mostly lost in extraction; its two tables survive.", "",
           "### Table 1: teacher vs student capacity (Pong)", "",
           "Paper (\"Tab1. Capacity of Teacher Network and Student Network\", lines 485–496; no scores in the table, "
           "the scores are in a lost figure):", "",
           table(["network", "layers", "capacity (KB)"], SDN_TABLE1), "",
           "The prose (lines 478–481) gives the student as 3 layers of **5 KB**, \"nearly 200 times compressed\"; the "
           "table gives 50 KB.", "",
           "Ours, every distilled student (size = parameter bytes of the acting network; scores = mean over the "
           "evaluation episodes; agreement = share of the student's actions equal to the teacher's greedy action):", ""]
    out.append(table(
        ["env", "teacher", "student variant", "student layers", "steps", "machine", "teacher KB", "student KB", "size ratio",
         "teacher score", "student score", "student / teacher", "episodes", "agreement", "source"],
        ([r["env"], r["teacher"], r["variant"], r["layers"], r["steps"], machine_label(r["rec"]), kb(r["teacher_bytes"]),
          kb(r["student_bytes"]), times(r["size_ratio"], 0),
          pm(r["teacher_mean"], r["teacher_std"]) + (" *" if r["teacher_from"] else ""),
          pm(r["student_mean"], r["student_std"]), pct(share(r), 0), r["episodes"], pct(r["agreement"]), src(r["rec"])]
         for r in sorted(rows, key=lambda r: (r["env"], r["variant"], -(num(r["steps"]) or 0))))))
    borrowed = sorted({r["teacher_from"] for r in rows if r["teacher_from"]})
    if borrowed:
        out += ["", "\\* the record has no teacher score; the one shown is that of the same teacher file in "
                + ", ".join(borrowed) + " (its `teacher.source`: "
                + ", ".join(sorted({str(get(r["rec"], "teacher", "source", default=DASH)) for r in rows
                                    if r["rec"]["_file"] in borrowed})) + ")."]
    out += ["", "student / teacher is left out where a score is negative (Pong scores run from −21 to 21).", "",
            "Student variants on Pong: `frames` = the four frames one per time step, oldest first (the paper's "
            "method); `frames8` = each frame held for two steps; `stacked` = the four frames as channels for "
            "`n_steps` steps (ablation); the suffix is the loss (`soft_hard_ce` = the paper's cross-entropy with "
            "temperature plus the hard label; `hard_ce`, `mse_*` = the loss ablation); `+lr3e-4` = learning rate 3e-4.", ""]
    steps = [r for r in rows if r["steps_to_95"] is not None]
    if steps:
        out += ["Environment steps to reach 95 % of the teacher vs DQN from scratch (CartPole-v1):", ""]
        out.append(table(["teacher", "student: steps to ≥ 95 % of teacher", "DQN from scratch: first step at target",
                          "DQN evaluations at target", "source"],
                         ([r["teacher"], r["steps_to_95"], get(r["rec"], "dqn_from_scratch", "first_step_at_target"),
                           f"{fmt(get(r['rec'], 'dqn_from_scratch', 'evals_at_target'))}/"
                           f"{fmt(get(r['rec'], 'dqn_from_scratch', 'evals'))}",
                           src(r["rec"])] for r in steps)))
        out.append("")
    out += ["### Table 2: power of different devices", "",
            "Paper (\"Tab2. Power performance of different devices\", lines 530–536), measured on the devices:", "",
            table(["model", "device", "power (W)"], SDN_TABLE2), "",
            "Ours: no chip is measured; energy per action comes from the NC64C cost model (assumed per-event costs, "
            "see `docs/hardware.md`) for the spiking agents and from the MAC count at fp32 for the ANN teacher, in "
            "the pipeline's run. Energy per action, not power: the units differ from the paper's.", ""]
    pipe = [(rec, r) for rec in of(records, "pipeline") for r in rec.get("rows") or [] if isinstance(r, dict)]
    energy_key = lambda r: next((k for k in r if str(k).startswith("energy")), None)  # noqa: E731
    out.append(table(["env", "agent", "kind", "SynOps/action", "energy/action (µJ)", "machine", "source"],
                     ([env_of(rec), r.get("agent"), r.get("kind"), fmt(num(r.get("SynOps/action")), 0),
                       fmt(num(r.get(energy_key(r))) if energy_key(r) else None, 3), machine_label(rec), src(rec)]
                      for rec, r in pipe)))
    out.append("")
    return out


def section_cvtc(records: list[dict[str, Any]]) -> list[str]:
    seeds = cvtc_seed_rows(records)
    notes = [rec.get("paper_rows_note") for rec in of(records, "cvtc_results") if rec.get("paper_rows_note")]
    out = ["## CVTC: temporal-coded spiking Q-network with DDQN (Wu et al. 2022)", "",
           f"Seed text: `{CVTC_SEED}`. **The numbers of the paper's Table 4 are not in the seed text** (nor those of "
           "Tables 1–3: only their captions and the prose survive). What survives: Table 4 compares DDQN-SNN-CVTC, "
           "DDQN, PPO and DDQN-SNN-TC on CartPole-v0 and MountainCar-v0 (line 187), each \"run 10 times and averaged "
           "their best rewards\" (line 209); \"PPO is obviously stronger than other methods\", DDQN-SNN-CVTC \"slightly "
           "inferior to the DDQN algorithm\", DDQN-SNN-TC \"did not have any positive performance on both tasks\" "
           "(line 211). CartPole network: 80 encoded inputs → 800 hidden (line 135).", ""]
    out += [f"> {n}" for n in notes] + ([""] if notes else [])
    out += ["### Table 4 layout: environment × method", "",
            "Ours: mean reward over 100 deterministic evaluation episodes of each seed's best checkpoint (the zoo's "
            "EvalCallback `best_model.zip`: what `--load-best` and the pipeline deploy, and the closest to the paper's "
            "protocol, the best reward of each of 10 runs); the same seed's final model in parentheses — DQN-style "
            "training is unstable and the two can differ a lot. Mean ± std over seeds; each seed's figure beside it.", ""]
    envs = list(dict.fromkeys([*CVTC_PAPER_ENVS, *sorted({r["env"] for r in seeds})]))
    envs = sorted(envs, key=lambda e: (e.split("-")[0] != "CartPole", e))
    methods = list(dict.fromkeys([*CVTC_METHODS, *[r["method"] for r in seeds]]))
    table_rows = []
    for env in envs:
        paper = "lost (not in the seed text)" if env in CVTC_PAPER_ENVS else "— (paper: CartPole-v0)"
        for method in methods:
            here = [r for r in seeds if r["env"] == env and r["method"] == method]
            goal = next((r["target"] for r in here if r["target"] is not None), GOAL.get(f"cvtc_{env}"))
            if here:
                values = [r["mean"] for r in here]
                agg = pm(statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None)
                per_seed = "; ".join(f"s{r['seed']}: {pm(r['mean'], r['std'])}"
                                     + (f" (final {fmt(r['final'])})" if r.get("final") is not None else
                                        " (final model)" if r["model"] != "best" else " (run stopped early)")
                                     for r in here)
                mostafa = "; ".join(f"s{r['seed']}: {fmt(r['mostafa'])}" for r in here if r["mostafa"] is not None) or DASH
                hits = sum(v >= goal for v in values) if goal is not None else None
                met = f"{hits}/{len(values)} seeds" if hits is not None else DASH
                sources = ", ".join(dict.fromkeys(src(r["rec"]) for r in here))
            else:
                agg, per_seed, mostafa, met, sources = "not run", DASH, DASH, DASH, DASH
            table_rows.append([env, CVTC_METHODS.get(method, method), paper, agg, per_seed, mostafa,
                               f"≥ {goal:g}" if goal is not None else DASH, met, sources])
        table_rows.append([env, "DDQN-SNN-TC", "no positive performance (line 211)", "not implemented", DASH, DASH, DASH,
                           DASH, DASH])
    out.append(table(["env", "method", "paper (Table 4)", "ours: mean ± std over seeds", "ours: each seed",
                      "same model, Mostafa inference", "target", "seeds at target", "source"], table_rows))
    out += ["", "Training commands of the seeds above (evaluation: the record's command, appendix):", ""]
    out += [f"- {CVTC_METHODS.get(r['method'], r['method'])}, {r['env']}, seed {r['seed']}: `{r['command']}`"
            for r in seeds if r.get("command")]
    out.append("")
    return out


def section_conversion(records: list[dict[str, Any]]) -> list[str]:
    runs = conversion_runs(records)
    out = ["## Conversion: DQN → integrate-and-fire SNN (Tan, Patel, Kozma)", "",
           f"Seed text: `{CONV_SEED}`. Its Table 1 (lines 200–217: 17 Atari games, DQN vs converted SNN, T = 500, "
           "50 games each, best percentile of 99.9 / 99.99) and Table 2 (lines 283–304: per percentile, SNN score and "
           "conversion rate with the normal and the robust firing rate; the header is garbled in extraction, the "
           "rows are intact) survive. Of its games we ran Pong; CartPole-v1 is the issue's addition (not in the "
           "paper).", "",
           "### Table 1 / Table 2 layout: the paper's Pong rows and ours", "",
           "Ours: the teacher's greedy actions vs the SNN's (robust readout) on the frames the SNN plays, ε = 0.05; "
           "score = mean over the episodes (teacher evaluated in the same run). Conversion rate (CR) = share of "
           "steps where both act alike.", ""]
    rows = [[f"paper {p['table']}", "Pong", "DQN", 500, p["percentile"], pm(*p["dqn"]), pm(*p["snn"]),
             f"{p['snn_pct']} %" if p["snn_pct"] else DASH, pm(*p["cr_robust"]) + " %" if p["cr_robust"] else DASH,
             pm(*p["cr_rate"]) + " %" if p["cr_rate"] else DASH, 50, "paper"] for p in CONV_PAPER_PONG]
    for r in sorted(runs, key=lambda r: ("Pong" not in r["env"], r["env"], r["T"], r["rec"]["_file"])):
        ann = r["ann"] or {}
        rows.append([f"ours: {r['rec']['_file']}", r["env"], r["teacher"], r["T"], r["percentile"],
                     pm(ann.get("score"), ann.get("std")),
                     pm(r["main"]["score"], r["main"]["std"]) + ("" if r["readout"] == "robust" else f" ({r['readout']})"),
                     pct(r["main"]["ratio"]), pct(r["cr_robust"], 2), pct(r["cr_rate"], 2), r["main"]["episodes"],
                     machine_label(r["rec"])])
    out.append(table(["source", "game", "teacher", "T", "percentile", "teacher score", "SNN score (robust)",
                      "SNN % of teacher", "CR robust", "CR rate", "episodes", "machine"], rows))
    out += ["", "### T sweep: every row of every conversion record", "",
            "SynOps/action: synaptic events per action; s/action: wall time of one action on the machine named.", ""]
    sweep = []
    for rec in of(records, "conversion"):
        meta = conversion_meta(rec)
        for r in meta["rows"]:
            sweep.append([meta["env"], r["T"] if r["T"] is not None else "ANN", r["readout"], meta["percentile"],
                          pm(r["score"], r["std"]), r["episodes"], pct(r["ratio"]), pct(r["cr"], 2),
                          fmt(r["synops"]), fmt(r["s_action"], 4), machine_label(rec), src(rec)])
    out.append(table(["env", "T", "readout", "percentile", "score", "episodes", "score / teacher", "CR",
                      "SynOps/action", "s/action", "machine", "source"], sweep))
    out.append("")
    return out


def section_speed(records: list[dict[str, Any]]) -> list[str]:
    out = ["## Speed ratios", "", "Medians of repeated timings; \"thr.\" = torch threads. The 2-core CPU is shared "
           "with other jobs (its wall-clock figures are noisy; CPU-time ratios are given where measured).", "",
           f"### CVTC vs an MLP of the same shape (#3; target ≤ {GOAL['cvtc_speed']:g}× on CPU)", "",
           "Forward + backward of 80→800→2, batch 32.", ""]
    out.append(table(["machine", "CVTC implementation", "MLP ms", "CVTC ms", "ratio (wall)", "ratio (CPU time)", "target met",
                      "source"],
                     ([machine_label(r["rec"], threads=True), r["candidate"], fmt(r["mlp_ms"], 3), fmt(r["ms"], 3),
                       times(r["wall"], 2), times(r["cpu"], 2),
                       DASH + " (CPU target)" if r["device"] != "cpu" else
                       "yes" if min(x for x in (r["wall"], r["cpu"], float("inf")) if x is not None) <= GOAL["cvtc_speed"]
                       else "no", src(r["rec"])] for r in cvtc_speed_rows(records))))
    out += ["", "### Conversion: our IF simulation vs spikingjelly and a per-step loop "
            f"(#4; target ≥ {GOAL['conv_speedup']:g}× vs the spikingjelly IFNode per-step loop, CPU, batch 1)", "",
            "NatureCNN (the Pong fixture's actor) at T = 500; seconds per action.", ""]
    out.append(table(["machine", "batch", "baseline", "ours s/action", "baseline s/action", "speed-up",
                      "spike mismatches (float32)", "source"],
                     ([machine_label(r["rec"], r["device"], threads=True), r["batch"], r["baseline"],
                       fmt(r["ours_s"], 4), fmt(r["base_s"], 4), times(r["speedup"]), r["mismatch"], src(r["rec"])]
                      for r in conversion_speed_rows(records))))
    lat = [r for r in sdn_rows(records) if r["lat_student"] is not None or r["lat_teacher"] is not None]
    out += ["", "### SDN: student vs teacher per-action latency "
            f"(#5; target: student ≥ {GOAL['sdn_latency']:g}× faster on CPU)",
            "", "teacher / student > 1 means the student is faster. "
            "Rows measured on a GPU do not count for the CPU target.", ""]
    out.append(table(["env", "teacher", "student variant", "machine", "measured on", "teacher ms", "student ms",
                      "teacher / student", "source"],
                     ([r["env"], r["teacher"], r["variant"], machine_label(r["rec"]),
                       "CPU" if r["lat_cpu"] else r["device"], fmt(r["lat_teacher"], 3), fmt(r["lat_student"], 3),
                       times(r["lat_ratio"], 2), src(r["rec"])]
                      for r in lat)))
    sps = [r for r in sdn_rows(records) if r["distill_sps"] is not None]
    out += ["", "### SDN: distillation steps per second vs DQN training (#5)", ""]
    out.append(table(["env", "student variant", "machine", "distillation steps/s", "DQN steps/s (same env)", "ratio",
                      "source"],
                     ([r["env"], r["variant"] if "Pong" in r["env"] else f"{r['teacher']} teacher, {r['variant']}",
                       machine_label(r["rec"]), fmt(r["distill_sps"]), fmt(num(get(r["rec"], "speed", "dqn_steps_per_s"))),
                       times(r["distill_sps"] / num(get(r["rec"], "speed", "dqn_steps_per_s")), 2)
                       if num(get(r["rec"], "speed", "dqn_steps_per_s")) else DASH, src(r["rec"])] for r in sps)))
    out.append("")
    return out


def section_nc64c(records: list[dict[str, Any]]) -> list[str]:
    out = ["## NC64C integer model: agreement by weight bit width (#6)", ""]
    for rec in of(records, "nc64c"):
        out += [f"{rec.get('metric', 'agreement')} (`input_12`: 12-bit inputs; `same`: inputs as wide as the "
                f"weights). Defaults: {fmt(rec.get('default_weight_bits'))}-bit weights, "
                f"{fmt(rec.get('default_input_bits'))}-bit inputs, {fmt(rec.get('membrane_bits'))}-bit membrane. "
                f"{machine_label(rec)}, {src(rec)}.", ""]
        rows = [r for r in rec.get("rows") or [] if isinstance(r, dict)]
        bits = sorted({r.get("weight_bits") for r in rows if num(r.get("weight_bits")) is not None})
        networks = list(dict.fromkeys(r.get("network") for r in rows))
        pivot = []
        for network in networks:
            cells = []
            for b in bits:
                hit = next((r for r in rows if r.get("network") == network and r.get("weight_bits") == b), {})
                cells.append(f"{fmt(num(hit.get('input_12')), 2)} / {fmt(num(hit.get('input_same')), 2)}" if hit else DASH)
            pivot.append([network, *cells, fmt(num(get(rec, "default_agreement", network)), 2),
                          fmt(get(rec, "networks", network, "min_bits_for_99pct_same_width"))])
        out.append(table(["network", *[f"{b}-bit weights (input_12 / same)" for b in bits], "at the defaults",
                          "min bits for 99 % (same width)"], pivot))
        out.append("")
    return out


def section_pipeline(records: list[dict[str, Any]]) -> list[str]:
    out = ["## The pipeline and the DDQN foundation (#7, #2)", ""]
    for rec in of(records, "pipeline"):
        out += [f"**{title_of(rec)}** — {rec.get('headline', DASH)} ({machine_label(rec)}, {src(rec)})", ""]
        out += [dict_table([flatten(r) for r in rec.get("rows") or [] if isinstance(r, dict)]), ""]
    for rec in of(records, "ddqn"):
        out += [f"**{title_of(rec)}** ({machine_label(rec)}, {src(rec)})", ""]
        out += [table(["seed", "model", "mean reward", "episodes", "train seconds"],
                      ([r.get("seed"), r.get("model"), pm(r.get("mean_reward"), r.get("std_reward")), r.get("episodes"),
                        fmt(num(r.get("train_seconds")))] for r in rec.get("rows") or [] if isinstance(r, dict))), ""]
    return out


SECTIONS: list[tuple[str, Callable[[list[dict[str, Any]]], list[str]], tuple[str, ...]]] = [
    ("SDN", section_sdn, ("sdn",)),
    ("CVTC", section_cvtc, ("cvtc_results",)),
    ("conversion", section_conversion, ("conversion",)),
    ("speed", section_speed, ("cvtc_speed", "conversion_speed")),
    ("NC64C", section_nc64c, ("nc64c",)),
    ("pipeline", section_pipeline, ("pipeline", "ddqn")),
]


def appendix(records: list[dict[str, Any]], dump: set[str]) -> list[str]:
    out = ["## Appendix: every record, its command and machine", "",
           "Sorted by file. Records whose family has no section above (or whose section failed) also get their "
           "rows in full.", ""]
    for rec in records:
        out += [f'<a id="{rec["_anchor"]}"></a>', "", f"### {rec['_file']}", ""]
        if "_error" in rec:
            out += [f"- **Unreadable**: {rec['_error']}", ""]
            continue
        out.append(f"- Title: {title_of(rec)}")
        for label, command in commands(rec) or [("command", DASH)]:
            out.append(f"- {re.sub(r'[._]', ' ', label).capitalize()}: `{command}`")
        for label, text in machines(rec) or [("machine", "not recorded")]:
            out.append(f"- {re.sub(r'[._]', ' ', label).capitalize()}: {text}")
        for key in ("target", "headline"):
            if rec.get(key):
                out.append(f"- {key.capitalize()}: {rec[key]}")
        out.append("")
        notes = rec.get("notes")
        for note in notes if isinstance(notes, list) else [notes] if notes else []:
            out.append(f"> {note}  ")
        if notes:
            out.append("")
        if rec["_file"] in dump:
            rows = rec.get("rows")
            if isinstance(rows, dict):
                rows = [{"row": k, **v} if isinstance(v, dict) else {"row": k, "value": v} for k, v in rows.items()]
            if not isinstance(rows, list):
                rows = [{k: v for k, v in rec.items() if not k.startswith("_") and not isinstance(v, (dict, list))}]
            out += [dict_table([flatten(r) for r in rows if isinstance(r, dict)]), ""]
    return out


def machine_legend(records: list[dict[str, Any]]) -> list[str]:
    """One line per short machine name: CPU model, cores, torch builds, GPU, as the records give them."""
    facts: dict[str, dict[str, set[str]]] = {}
    for rec in records:
        if "_error" in rec:
            continue
        for _, text in machines(rec):
            base = machine_label({"machine": text}).split(",")[0]
            entry = facts.setdefault(base, {"cpu": set(), "cores": set(), "torch": set(), "gpu": set()})
            first = text.split(",")[0].strip()
            if not first.lower().startswith(("linux", "platform")):
                entry["cpu"].add(first)
            entry["cores"].update(re.findall(r"(\d+) cores", text) + re.findall(r"cpu_count: (\d+)", text))
            entry["torch"].update(re.findall(r"torch:? (\d[\w.+]*)", text))
            entry["gpu"].update(g.strip() for g in re.findall(r"GPU (NVIDIA[^,]*)", text))
    lines = []
    for base, entry in sorted(facts.items()):
        parts = [" / ".join(sorted(entry["cpu"])), " / ".join(f"{c} cores" for c in sorted(entry["cores"])),
                 "torch " + " / ".join(sorted(entry["torch"])) if entry["torch"] else "",
                 "GPU " + " / ".join(sorted(entry["gpu"])) if entry["gpu"] else ""]
        lines.append(f"- **{base}**: " + ", ".join(p for p in parts if p)
                     + ("; \"GPU\" / \"CPU\" after the name: what the figure ran on" if entry["gpu"] else ""))
    return lines


def render(records: list[dict[str, Any]]) -> str:
    """The whole ``docs/results.md``."""
    parts = ["# Measured results", "",
             "Generated by `python benchmarks/report.py` from `benchmarks/results/*.json`; **do not edit by hand** "
             "(rerun a benchmark, then the script). Every measured figure comes from a record; the paper figures are "
             "quoted from the seed texts with their line numbers. Each record's command and machine are in the "
             "[appendix](#appendix-every-record-its-command-and-machine).", "",
             "Machines (short names used in the tables; each record's full description is in the appendix):", "",
             *machine_legend(records), "", "## Summary: the issues' targets", "",
             "One row per \"Must show\" target of the issues; \"reported\" = a figure the issue asks for without a "
             "threshold.", "",
             table(SUMMARY_COLUMNS, summary_rows(records)), ""]
    dump = {r["_file"] for r in records if r["_kind"] in ("other", "broken")}
    for name, section, kinds in SECTIONS:
        try:
            parts += section(records)
        except Exception as exc:  # keep the report: the appendix shows these records in full
            parts += [f"## {name}", "", f"_This section could not be rendered from the current records "
                      f"({type(exc).__name__}: {exc}); their rows are in the appendix._", ""]
            dump |= {r["_file"] for r in records if r["_kind"] in kinds}
    parts += appendix(records, dump)
    return "\n".join(parts).rstrip() + "\n"


def readme_block(records: list[dict[str, Any]], docs_link: str = "docs/results.md") -> str:
    """The README's block: the summary table, sources linked into the full report."""
    rows = summary_rows(records, link=docs_link)
    return (f"Summary of the issues' targets; the full report with the papers' tables beside ours, speed ratios, "
            f"commands and machines: [{docs_link}]({docs_link}).\n\n" + table(SUMMARY_COLUMNS, rows))


def write_readme(readme: Path, block: str) -> bool:
    """Replace the text between the markers; False when the README or a marker is missing."""
    if not readme.is_file():
        return False
    text = readme.read_text()
    if START not in text or END not in text:
        return False
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{block}\n{END}{tail}")
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the benchmark JSON records")
    parser.add_argument("--out", type=Path, default=OUT, help="the report to write")
    parser.add_argument("--readme", default=str(README),
                        help="README whose block between the results markers is replaced ('none': leave it)")
    args = parser.parse_args(argv)
    records = load_records(args.results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(records))
    message = f"wrote {args.out} from {len(records)} records"
    if args.readme.lower() != "none":
        readme = Path(args.readme)
        try:
            link = Path(args.out).resolve().relative_to(readme.resolve().parent).as_posix()
        except ValueError:
            link = str(args.out)
        if write_readme(readme, readme_block(records, link)):
            message += f" and the results block of {readme}"
    print(message)


if __name__ == "__main__":
    main()
