"""``run_pipeline``: every stage in order, each skipped when its outputs are already there and valid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from sb3_snn.pipeline import steps
from sb3_snn.pipeline.stages import run_stage
from sb3_snn.pipeline.summary import render_table, summary_rows, write_plots


def run_pipeline(settings: dict[str, Any], out: str | Path, console: Console | None = None) -> dict[str, Any]:
    """Run the pipeline described by ``settings`` (see ``pipeline.yml``) into the folder ``out``.

    :param settings: one environment's section of a pipeline config, with ``env`` set
    :param out: results folder; rerunning with the same folder resumes / skips finished stages
    :param console: where progress and the table go (default: a new rich console)
    :return: the summary (also written to ``out/summary.json``)
    """
    import torch as th

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    console = console or Console()
    th.set_num_threads(int(settings.get("threads", 1)))
    base = {"env": settings["env"], "seed": settings["seed"], "teacher": settings["teacher"]}
    teacher_zip = out / "teacher" / "teacher.zip"
    plan: list[tuple[str, dict[str, Any], Any]] = [
        ("teacher", base, lambda folder: steps.teacher_stage(settings, folder)),
    ]
    if settings.get("sdn"):
        plan.append(("sdn", {**base, "sdn": settings["sdn"]},
                     lambda folder: steps.sdn_stage(settings, folder, teacher_zip)))
    if settings.get("conversion"):
        plan.append(("conversion", {**base, "conversion": settings["conversion"], "epsilon": settings["evaluation"]["epsilon"]},
                     lambda folder: steps.conversion_stage(settings, folder, teacher_zip)))
    if settings.get("cvtc"):
        plan.append(("cvtc", {"env": settings["env"], "seed": settings["seed"], "cvtc": settings["cvtc"]},
                     lambda folder: steps.cvtc_stage(settings, folder)))
    everything = {key: settings.get(key) for key in ("teacher", "sdn", "conversion", "cvtc")}
    plan.append(("evaluation", {**base, **everything, "evaluation": settings["evaluation"]},
                 lambda folder: steps.evaluation_stage(settings, folder, out)))
    if settings.get("export"):
        plan.append(("export", {**base, **everything, "evaluation": settings["evaluation"], "export": settings["export"]},
                     lambda folder: steps.export_stage(settings, folder, out)))

    results: dict[str, Any] = {}
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} stages"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"sb3-snn pipeline on {settings['env']}", total=len(plan))
        for name, stage_settings, function in plan:
            progress.update(task, description=f"{settings['env']}: {name}")
            results[name] = run_stage(name, out, stage_settings, function,
                                      on_skip=lambda stage: console.print(f"[green]{stage}: outputs valid, skipped"))
            progress.advance(task)

    sweep = results.get("conversion", {}).get("sweep")
    teacher_macs = next((row.get("ann_macs") for row in sweep or [] if row.get("ann_macs")), None)
    rows = summary_rows(results["evaluation"]["rows"], results.get("export"), teacher_macs)
    table = render_table(rows)
    export = settings.get("export") or {}
    plots = write_plots(out, sweep, rows, float(export.get("action_rate_hz", 50)))
    summary = {"env": settings["env"], "seed": settings["seed"], "rows": rows, "conversion_sweep": sweep,
               "stages": {name: results[name] for name in results if name not in ("evaluation", "export", "conversion")},
               "plots": plots}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    (out / "summary.txt").write_text(table + "\n")
    console.print(table, soft_wrap=True, highlight=False, markup=False)
    console.print(f"results in {out} (summary.json, summary.txt, {', '.join(plots)})")
    return summary
