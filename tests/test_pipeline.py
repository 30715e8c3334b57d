"""The whole pipeline, shortened: end to end, resumption after SIGKILL, determinism."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sb3_snn.pipeline.stages import sha256, valid_record
from sb3_snn.zoo.checkpoint import checkpoint_timesteps

from conftest import ROOT, run_cli

TINY = ROOT / "tests/data/tiny_pipeline.yml"


def _pipeline(out: Path, config: Path = TINY, cwd: Path | None = None):
    return run_cli(["-m", "sb3_snn", "pipeline", "--config", str(config), "--out", str(out)], cwd=cwd or out.parent)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("pipeline") / "run"
    return out, _pipeline(out).stdout


@pytest.mark.expensive
def test_conversion_goal_picks_the_smallest_T_reaching_it(finished, tmp_path):
    """With ``conversion.goal`` the stage measures the held-out conversion rate at every T and the converted agent
    runs at the smallest T reaching it (the largest when none does); a fixed ``conversion_timesteps`` wins."""
    from sb3_snn.pipeline.config import load_config
    from sb3_snn.pipeline.steps import conversion_stage, converted_timesteps

    out, _ = finished
    settings = load_config("CartPole-v1", TINY)
    settings["conversion"].update(goal=0.5, held_out=100)
    settings["evaluation"].pop("conversion_timesteps")
    folder = tmp_path / "conversion"
    folder.mkdir()
    outcome = conversion_stage(settings, folder, out / "teacher/teacher.zip")
    rates = {row["timesteps"]: row["conversion_rate"] for row in outcome.summary["held_out"]}
    assert set(rates) == {8, 32} and all(0.0 <= r <= 1.0 for r in rates.values())
    reaching = [t for t, r in sorted(rates.items()) if r >= 0.5]
    assert outcome.summary["chosen_timesteps"] == (reaching[0] if reaching else 32)
    (folder / "stage.json").write_text(json.dumps({"summary": outcome.summary}))
    assert converted_timesteps(settings, tmp_path) == outcome.summary["chosen_timesteps"]
    assert converted_timesteps({**settings, "evaluation": {"conversion_timesteps": 8}}, tmp_path) == 8


@pytest.mark.expensive
def test_end_to_end_prints_the_table_and_writes_results(finished):
    out, stdout = finished
    assert "agreement" in stdout and "energy/action" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert [row["agent"] for row in summary["rows"]] == ["teacher", "sdn", "converted", "cvtc"]
    energy = {row["agent"]: row["energy/action (µJ)"] for row in summary["rows"]}
    assert energy["sdn"] > 0 and energy["converted"] > 0 and energy["teacher"] > 0
    sources = {row["agent"]: row["energy source"] for row in summary["rows"]}
    assert sources == {"teacher": "fp32 ANN", "sdn": "nc64c", "converted": "nc64c", "cvtc": "nc64c"}
    for plot in ("learning_curves.png", "conversion_score_vs_T.png", "energy_per_action.png"):
        assert (out / "plots" / plot).stat().st_size > 1000
    assert {r["timesteps"] for r in summary["conversion_sweep"]} == {0, 8, 32}
    for stage in ("teacher", "sdn", "conversion", "cvtc", "evaluation", "export"):
        assert (out / stage / "stage.json").is_file(), stage
    assert (out / "export/sdn_report.txt").read_text().startswith("backend: nc64c")
    assert list((out / "tensorboard/CartPole-v1").glob("SDN_1/events.out.tfevents.*"))


@pytest.mark.expensive
def test_rerun_skips_valid_stages_and_redoes_altered_ones(finished):
    out, _ = finished
    key = json.loads((out / "evaluation/stage.json").read_text())["key"]
    assert valid_record(out / "evaluation", key) is not None
    assert set(key["upstream"]) == {"teacher", "sdn", "conversion", "cvtc"}  # pinned to their outputs' hashes
    report = out / "export/sdn_report.txt"
    report.write_text(report.read_text() + "tampered\n")
    stdout = _pipeline(out).stdout
    assert "teacher: outputs valid, skipped" in stdout and "evaluation: outputs valid, skipped" in stdout
    assert "export: outputs valid, skipped" not in stdout  # its output changed: it ran again
    assert "tampered" not in report.read_text()


@pytest.mark.expensive
def test_sigkill_mid_training_then_rerun_resumes(tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["CartPole-v1"]["teacher"]["n_timesteps"] = 8000  # checkpoints every 800 steps
    config_path = tmp_path / "pipeline.yml"
    config_path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "sb3_snn", "pipeline", "--config", str(config_path), "--out", str(out)],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = out / "teacher/zoo/dqn/CartPole-v1_1/checkpoint"
    deadline = time.time() + 240
    while checkpoint_timesteps(checkpoint) == 0 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(1.0)  # let an episode or two end after the checkpoint: the resume must not count them twice
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = checkpoint_timesteps(checkpoint)
    assert 0 < saved < 8000, "the run was not killed mid-training"
    assert not (out / "teacher/stage.json").exists()
    _pipeline(out, config_path)
    summary = json.loads((out / "teacher/stage.json").read_text())["summary"]
    assert summary["resumed_from_timestep"] >= saved  # at most one checkpoint interval lost
    assert summary["n_timesteps"] == 8000
    assert not (out / "teacher/zoo/dqn/CartPole-v1_2").exists()  # the same experiment folder, continued
    curve = json.loads((out / "teacher/learning_curve.json").read_text())
    steps = [point[0] for point in curve]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)  # one step axis, no episode twice
    assert 8000 - 500 < steps[-1] <= 8000  # it reaches the run's end (CartPole episodes are <= 500 steps)


@pytest.mark.expensive
def test_same_seed_gives_identical_tables(finished, tmp_path):
    out, _ = finished
    again = tmp_path / "again"
    _pipeline(again)
    first = json.loads((out / "summary.json").read_text())
    second = json.loads((again / "summary.json").read_text())
    assert first["rows"] == second["rows"]
    untimed = lambda sweep: [{k: v for k, v in row.items() if k != "seconds_per_action"} for row in sweep]  # noqa: E731
    assert untimed(first["conversion_sweep"]) == untimed(second["conversion_sweep"])


@pytest.mark.expensive
def test_agent_that_does_not_fit_the_chip_is_reported_not_fatal(finished, tmp_path):
    """An NC64C model of 4 cores x 8 neurons holds the SDN student (16 + 2 neurons) but not the converted
    DQN (32 + 2): the export stage says so for that agent (FitError), still exports the other, and the
    table shows the refusal instead of an energy figure."""
    from sb3_snn.pipeline import steps
    from sb3_snn.pipeline.config import load_config
    from sb3_snn.pipeline.summary import summary_rows

    out, _ = finished
    settings = load_config("CartPole-v1", TINY)
    settings["export"] = {**settings["export"], "options": {"n_cores": 4, "neurons_per_core": 8}}
    folder = tmp_path / "export"
    folder.mkdir()
    outcome = steps.export_stage(settings, folder, out)
    agents = outcome.summary["agents"]
    assert agents["converted"]["error_type"] == "FitError" and "cores" in agents["converted"]["error"]
    assert (folder / "converted_report.txt").read_text().startswith("not exported to nc64c")
    assert agents["sdn"]["metrics"]["energy_per_action_uj"] > 0
    evaluation = json.loads((out / "evaluation/evaluation.json").read_text())
    rows = {row["agent"]: row for row in summary_rows(evaluation, outcome.summary, None)}
    assert rows["converted"]["energy/action (µJ)"] == "not exported: FitError"


@pytest.mark.expensive
def test_pipeline_exports_with_the_nir_backend(finished, tmp_path):
    """``export.backend: nir``: the finished run's stages are reused, the export stage reruns with the NIR backend
    (``compile`` takes the cost context like every backend), and the table and plots name no other backend."""
    import shutil

    out, _ = finished
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    config = yaml.safe_load(TINY.read_text())
    config["CartPole-v1"]["export"].update(backend="nir", options={"approximate_reset": True})
    config_path = tmp_path / "nir.yml"
    config_path.write_text(yaml.safe_dump(config))
    stdout = _pipeline(copy, config_path).stdout
    assert "evaluation: outputs valid, skipped" in stdout and "export: outputs valid, skipped" not in stdout
    for agent in ("sdn", "converted"):
        report = (copy / f"export/{agent}_report.txt").read_text()
        assert report.startswith("backend: nir") and "actions per second" in report, report
        assert (copy / f"export/{agent}/model.nir").is_file()
    assert "reset by subtraction written as reset to 0" in (copy / "export/converted_report.txt").read_text()
    summary = json.loads((copy / "summary.json").read_text())
    rows = {row["agent"]: row for row in summary["rows"]}
    assert rows["sdn"]["energy/action (µJ)"] is None and rows["sdn"]["energy source"] is None  # NIR has no energy model
    assert rows["teacher"]["energy source"] == "fp32 ANN"
    assert json.loads((copy / "export/stage.json").read_text())["summary"]["backend"] == "nir"


@pytest.mark.expensive  # two pipeline runs
def test_new_teacher_at_the_same_path_reruns_every_dependent_stage(tmp_path, cartpole_teacher_zip):
    """Stages are keyed by content: a new model saved over the ``--teacher`` file reruns the teacher stage and,
    through the output hashes, SDN, conversion, evaluation and export (CVTC does not use the teacher)."""
    import gymnasium as gym
    from stable_baselines3 import DQN

    config = yaml.safe_load(TINY.read_text())
    config_path = tmp_path / "pipeline.yml"
    config_path.write_text(yaml.safe_dump(config))
    teacher = tmp_path / "teacher.zip"
    teacher.write_bytes(cartpole_teacher_zip.read_bytes())
    out = tmp_path / "run"
    command = ["-m", "sb3_snn", "pipeline", "--config", str(config_path), "--out", str(out), "--teacher", str(teacher)]
    run_cli(command, cwd=tmp_path)
    first = json.loads((out / "summary.json").read_text())["rows"]
    DQN.load(teacher, env=gym.make("CartPole-v1"), device="cpu").learn(300).save(teacher)  # a new model, same path
    stdout = run_cli(command, cwd=tmp_path).stdout
    for stage in ("teacher", "sdn", "conversion", "evaluation", "export"):
        assert f"{stage}: outputs valid, skipped" not in stdout, stage
    assert "cvtc: outputs valid, skipped" in stdout
    assert (out / "sdn.previous/student.zip").is_file()  # the stale student is kept aside, not reused
    key = json.loads((out / "teacher/stage.json").read_text())["key"]
    assert key["inputs"]["teacher.path"] == sha256(teacher)
    assert json.loads((out / "summary.json").read_text())["rows"] != first


def test_typo_in_the_config_fails_before_any_work(tmp_path):
    """An unknown key is named with the closest known one; nothing is written."""
    config = yaml.safe_load(TINY.read_text())
    section = config["CartPole-v1"]
    section["sdnn"] = section.pop("sdn")
    section["evaluation"]["episodes"] = 0
    section["export"]["agents"] = ["sdn", "convertd"]
    config_path = tmp_path / "typo.yml"
    config_path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "sb3_snn", "pipeline", "--config", str(config_path), "--out", str(out)],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "sdnn: unknown key (did you mean 'sdn'?)" in proc.stderr
    assert "evaluation.episodes: must be >= 1, found 0" in proc.stderr
    assert not out.exists()


@pytest.mark.expensive  # needs the finished run
def test_a_stage_switched_off_adds_no_stale_agent(finished, tmp_path):
    """``sdn: null`` after a run with SDN: the old student is not evaluated (no stale row in the table)."""
    from sb3_snn.pipeline import steps
    from sb3_snn.pipeline.config import load_config

    out, _ = finished
    settings = load_config("CartPole-v1", TINY)
    settings["sdn"] = None
    assert "sdn" not in steps._agents(settings, out)
