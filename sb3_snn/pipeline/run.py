"""``run_pipeline``: the settings checked, then every stage in order, each skipped when its key (settings,
input files' and upstream outputs' hashes) matches its record and its outputs are intact."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from sb3_snn.pipeline import steps
from sb3_snn.pipeline.config import validate_settings
from sb3_snn.pipeline.stages import StageOutcome, run_stage, stage_key, stage_outputs
from sb3_snn.pipeline.summary import render_table, summary_rows, write_plots


def run_pipeline(settings: dict[str, Any], out: str | Path, console: Console | None = None) -> dict[str, Any]:
    """Run the pipeline described by ``settings`` (see ``pipeline.yml``) into the folder ``out``.

    :param settings: one environment's section of a pipeline config, with ``env`` set
    :param out: results folder; rerunning with the same folder resumes / skips finished stages
    :param console: where progress and the table go (default: a new rich console)
    :return: the summary (also written to ``out/summary.json``)
    :raises PipelineConfigError: the settings cannot run (every problem named; nothing is written)
    """
    import torch as th

    validate_settings(settings)  # before anything is written or trained
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    console = console or Console()
    th.set_num_threads(int(settings.get("threads", 1)))
    base = {"env": settings["env"], "seed": settings["seed"], "teacher": settings["teacher"]}
    teacher_zip = out / "teacher" / "teacher.zip"
    given = settings["teacher"].get("path")
    # name -> (settings, input files, upstream stages, work); the stage's key adds the files' and upstream outputs' hashes
    plan: list[tuple[str, dict[str, Any], dict[str, Path], list[str], Callable[[Path], StageOutcome]]] = [
        ("teacher", base, {"teacher.path": Path(given).expanduser()} if given else {}, [],
         lambda folder: steps.teacher_stage(settings, folder)),
    ]
    if settings.get("sdn"):
        plan.append(("sdn", {**base, "sdn": settings["sdn"]}, {}, ["teacher"],
                     lambda folder: steps.sdn_stage(settings, folder, teacher_zip)))
    if settings.get("conversion"):
        conversion = {**base, "conversion": settings["conversion"], "epsilon": settings["evaluation"]["epsilon"]}
        plan.append(("conversion", conversion, {}, ["teacher"],
                     lambda folder: steps.conversion_stage(settings, folder, teacher_zip)))
    if settings.get("cvtc"):
        plan.append(("cvtc", {"env": settings["env"], "seed": settings["seed"], "cvtc": settings["cvtc"]}, {}, [],
                     lambda folder: steps.cvtc_stage(settings, folder)))
    agents = [name for name, *_ in plan]
    everything = {key: settings.get(key) for key in ("teacher", "sdn", "conversion", "cvtc")}
    plan.append(("evaluation", {**base, **everything, "evaluation": settings["evaluation"]}, {}, agents,
                 lambda folder: steps.evaluation_stage(settings, folder, out)))
    if settings.get("export"):
        plan.append(("export", {**base, **everything, "evaluation": settings["evaluation"], "export": settings["export"]},
                     {}, [*agents, "evaluation"], lambda folder: steps.export_stage(settings, folder, out)))

    results: dict[str, Any] = {}
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} stages"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"sb3-snn pipeline on {settings['env']}", total=len(plan))
        for name, stage_settings, inputs, upstream, function in plan:
            progress.update(task, description=f"{settings['env']}: {name}")
            key = stage_key(stage_settings, inputs, {stage: stage_outputs(out, stage) for stage in upstream})
            results[name] = run_stage(
                name, out, key, function,
                on_skip=lambda stage: console.print(f"[green]{stage}: outputs valid, skipped"),
                on_superseded=lambda stage, moved: console.print(
                    f"[yellow]{stage}: settings or inputs changed, previous outputs moved to {moved}"))
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
