"""Shared by the conversion benchmarks: flat table rows and writing a record in the format of
``benchmarks/report.py`` (``benchmark``, ``title``, ``command``, ``machine``, ``target``, ``headline``,
``notes``, ``rows``; full details under ``details``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from torch import nn

from sb3_snn.conversion import collect_calibration_frames
from sb3_snn.conversion.extract import SourceNetwork

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, save_rows


def sweep_rows(results: list[dict[str, Any]], reference: str = "teacher") -> list[dict[str, Any]]:
    """One flat row per setting of a sweep (as :meth:`ConversionResult.as_dict` gives them)."""
    base = next((r["mean_score"] for r in results if r["readout"] == "ann"), None)
    rows = []
    for r in results:
        rounding = r.get("rounding", "floor")
        # the paper's neurons keep the plain readout name (benchmarks/report.py keys rows by it); the
        # rounding option is named in the readout label too, so it is never read as the paper's row
        readout = r["readout"] if r["readout"] == "ann" or rounding == "floor" else f"{r['readout']} ({rounding})"
        rows.append({
            "T": r["timesteps"] if r["readout"] != "ann" else "-", "readout": readout,
            "rounding": rounding if r["readout"] != "ann" else "-",
            "score": round(r["mean_score"], 2), "std": round(r["std_score"], 2), "episodes": len(r["scores"]),
            f"score / {reference}": round(r["mean_score"] / base, 4) if base else None,
            "conversion rate": round(r["conversion_rate"], 4), "agent steps": r["n_steps"],
            "SynOps/action": float(f"{r['synops_per_action']:.4g}") if r["readout"] != "ann" else None,
            "s/action": round(r["seconds_per_action"], 4),
        })
    return rows


def write_record(path: str | Path, record: dict[str, Any], device: str = "cpu") -> Path:
    """Write ``record`` (``machine`` filled in when missing) as JSON to ``path`` and append its rows to
    the records (the file's stem picks the suite); returns the path."""
    record.setdefault("machine", machine(device))
    output = Path(path)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=2, default=float))
    print(f"wrote {output}")
    save_rows(output.stem, json.loads(json.dumps(record, default=float)))
    return output


def held_out_frames(source: SourceNetwork, env: gym.Env, n_frames: int, first_seed: int = 100) -> np.ndarray:
    """Frames the source network plays epsilon-greedily (epsilon = 0.05), 1 000 per episode seed
    ``first_seed``, ``first_seed + 1``, ... -- the offline screens' held-out set."""
    return np.concatenate([
        collect_calibration_frames(source, env, min(1000, n_frames - start), 0.05, first_seed + k)
        for k, start in enumerate(range(0, n_frames, 1000))
    ])


def clipped_ann_agreement(source: SourceNetwork, scales: list[float], frames: np.ndarray, greedy: np.ndarray) -> float:
    """Agreement with ``greedy`` of the ANN whose hidden activations are clipped at the conversion's
    ``lambda`` (``policy.scales``): the limit T -> inf of the rate code, what the percentile alone costs."""
    synaptic = [i for i, layer in enumerate(source.layers) if isinstance(layer, (nn.Linear, nn.Conv2d))]
    with th.no_grad():
        h = source.preprocess(frames)
        for index, layer in enumerate(source.layers):
            h = layer(h)
            if index in synaptic[:-1]:
                h = th.clamp(h, 0.0, scales[synaptic.index(index)])
    return float((h.argmax(1).numpy() == greedy).mean())
