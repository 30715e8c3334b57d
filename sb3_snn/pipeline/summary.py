"""The pipeline's result: one table (printed and written) and three plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sb3_snn.backends import CONTEXT_POWER_W, FP32_MAC_PJ

COLUMNS = ["agent", "kind", "score", "agreement", "agreement (teacher's states)", "size (KB)", "SynOps/action",
           "energy/action (µJ)", "backend agreement"]


#: Where the teacher's energy figure comes from (the plots' label).
TEACHER_ENERGY_SOURCE = "fp32 ANN"


def summary_rows(
    evaluation: list[dict[str, Any]], export: dict[str, Any] | None, teacher_macs: int | None
) -> list[dict[str, Any]]:
    """One row per agent: score, agreement with the teacher (on the agent's own states, and on the teacher's:
    ``-`` for Box actions), size, SynOps and energy per action, and where
    the energy figure comes from (``energy source``: the backend named in the agent's report, or the fp32 ANN).
    An exported agent's ``backend agreement`` is its deployment's agreement with the float network it runs.

    :param evaluation: the evaluation stage's rows
    :param export: the export stage's summary (``None``: no export)
    :param teacher_macs: MACs of one dense pass of the teacher (its energy baseline), if known
    """
    exported = (export or {}).get("agents", {})
    rows = []
    for row in evaluation:
        agent = exported.get(row["agent"], {})
        metrics = agent.get("metrics", {})
        energy = metrics.get("energy_per_action_uj")
        source = agent.get("report", {}).get("backend", (export or {}).get("backend")) if energy is not None else None
        if "error" in agent:  # the backend refused it (e.g. more cores than the chip has)
            energy = f"not exported: {agent['error_type']}"
        if row["agent"] == "teacher" and teacher_macs:
            energy = teacher_macs * FP32_MAC_PJ * 1e-6  # fp32 MACs, Horowitz 2014 (no memory traffic)
            source = TEACHER_ENERGY_SOURCE
        rows.append({
            "agent": row["agent"],
            "kind": row["kind"],
            "score": f"{row['mean_score']:.1f} ± {row['std_score']:.1f}",
            "agreement": round(row["agreement"], 4),
            "agreement (teacher's states)": None if row.get("teacher_state_agreement") is None
            else round(row["teacher_state_agreement"], 4),
            "size (KB)": round(row["parameter_bytes"] / 1000, 1),
            "SynOps/action": metrics.get("synops_per_action", row.get("synops_per_action")),
            "energy/action (µJ)": energy,
            "energy source": source,
            # the exported deployment's agreement with the float network it was compiled from (held-out states)
            "backend agreement": metrics.get("agreement"),
        })
    return rows


def render_table(rows: list[dict[str, Any]]) -> str:
    """Rows as an aligned text table (``-`` for figures that do not apply)."""
    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    cells = [[cell(row.get(column)) for column in COLUMNS] for row in rows]
    widths = [max(len(column), *(len(r[i]) for r in cells)) for i, column in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def write_plots(out: Path, sweep: list[dict[str, Any]] | None, rows: list[dict[str, Any]], action_rate_hz: float) -> list[str]:
    """Learning curves, conversion score vs T, energy per action per device; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = out / "plots"
    folder.mkdir(exist_ok=True)
    written = []

    fig, ax = plt.subplots(figsize=(6, 4))
    for stage in ("teacher", "sdn", "cvtc"):
        path = out / stage / "learning_curve.json"
        if path.is_file():
            curve = json.loads(path.read_text())
            if curve:
                ax.plot([p[0] for p in curve], [p[1] for p in curve], label=stage, alpha=0.8)
    ax.set(xlabel="environment steps", ylabel="episode reward", title="Learning curves")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "learning_curves.png", dpi=100)
    written.append("plots/learning_curves.png")
    plt.close(fig)

    if sweep:
        fig, ax = plt.subplots(figsize=(6, 4))
        for readout in sorted({r["readout"] for r in sweep if r["readout"] != "ann"}):
            points = sorted((r["timesteps"], r["mean_score"]) for r in sweep if r["readout"] == readout)
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"SNN, {readout} readout")
        for r in sweep:
            if r["readout"] == "ann":
                ax.axhline(r["mean_score"], color="grey", linestyle="--", label="source ANN")
        ax.set(xscale="log", xlabel="time steps T", ylabel="score", title="Converted policy: score vs T")
        ax.legend()
        fig.tight_layout()
        fig.savefig(folder / "conversion_score_vs_T.png", dpi=100)
        written.append("plots/conversion_score_vs_T.png")
        plt.close(fig)

    labels, values = [], []
    for row in rows:
        if isinstance(row.get("energy/action (µJ)"), (int, float)):
            labels.append(f"{row['agent']} ({row.get('energy source') or 'estimate'})")
            values.append(row["energy/action (µJ)"])
    for name, watts, _ in CONTEXT_POWER_W:
        labels.append(f"{name} (SDN paper), {action_rate_hz:g} actions/s")
        values.append(watts / action_rate_hz * 1e6)  # power / rate = energy per action, idle included
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.barh(labels, values)
    ax.set(xscale="log", xlabel="energy per action (µJ, log)", title="Energy per action by device")
    fig.tight_layout()
    fig.savefig(folder / "energy_per_action.png", dpi=100)
    written.append("plots/energy_per_action.png")
    plt.close(fig)
    return written
