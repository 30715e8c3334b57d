"""The pipeline's stages: each takes the settings and its folder, writes files, returns a summary.

teacher -> sdn (distil) -> conversion (convert + T sweep) -> cvtc (DDQN) -> evaluation -> export.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces as gym_spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from sb3_snn.common.evaluation import Agreement, play_episodes
from sb3_snn.common.models import greedy_actions, load_model, parameter_bytes
from sb3_snn.common.observations import collect_observations, network_input
from sb3_snn.pipeline.config import zoo_config, zoo_section
from sb3_snn.pipeline.stages import StageOutcome
from sb3_snn.spiking.contract import is_spiking_policy, spiking_policy_of
from sb3_snn.zoo.algos import install_algos
from sb3_snn.zoo.training import train_from_zoo


def make_env(env_id: str, algo: str, seed: int, n_envs: int = 1) -> VecEnv:
    """An evaluation env built like the training one (the zoo config's wrappers and frame stack)."""
    from rl_zoo3 import create_test_env

    import rl_zoo3.import_envs  # noqa: F401

    from stable_baselines3.common.vec_env import VecFrameStack, unwrap_vec_wrapper

    hyperparams = zoo_section(zoo_config(algo), env_id)
    env = create_test_env(env_id, n_envs=n_envs, stats_path=None, seed=seed, log_dir=None, should_render=False,
                          hyperparams=hyperparams)
    # rl_zoo3 stacks frames only when it loads saved statistics (stats_path); the pipeline has none
    n_stack = int(hyperparams.get("frame_stack", 0) or 0)
    if n_stack > 0 and unwrap_vec_wrapper(env, VecFrameStack) is None:
        env = VecFrameStack(env, n_stack)
    return env


def learning_curve(folder: Path) -> list[list[float]]:
    """``[environment step, episode reward]`` of every episode in the experiment folder's Monitor files.

    Env ``rank`` of ``n`` writes ``<rank>.monitor.csv``; its episodes end at ``n`` times its cumulative
    length (exact for one env). A resumed run's files continue the run's own step axis
    (:func:`sb3_snn.zoo.checkpoint.restore_monitor_files`).
    """
    monitors = sorted(folder.glob("*.monitor.csv"))
    points: list[list[float]] = []
    for monitor in monitors:
        steps = 0
        for line in monitor.read_text().splitlines()[2:]:
            reward, length, *_ = line.split(",")
            steps += int(length)
            points.append([steps * len(monitors), float(reward)])
    return sorted(points)


def _train(algo: str, settings: dict[str, Any], stage: dict[str, Any], folder: Path, config: Path,
           hyperparams: dict[str, Any] | None, model_name: str) -> StageOutcome:
    n_timesteps = int(stage["n_timesteps"])
    start = time.time()
    eval_freq = int(stage.get("eval_freq", -1))
    run = train_from_zoo(algo, settings["env"], folder, config, n_timesteps, seed=settings["seed"],
                         hyperparams=hyperparams, tensorboard_log=str(folder.parent / "tensorboard"),
                         checkpoint_every=max(n_timesteps // 10, 500), eval_freq=eval_freq,
                         eval_episodes=int(stage.get("eval_episodes", 5)), progress_bar=settings.get("progress", False))
    model = run.model
    # the zoo's EvalCallback keeps the best evaluated model: DQN-style training is unstable, so that is
    # the one a zoo user would deploy (as `sb3-snn evaluate --load-best`)
    best = run.path / "best_model.zip"
    chosen = "best evaluated" if eval_freq > 0 and best.is_file() else "final"
    if chosen == "final":
        model.save(folder / model_name)
    else:
        shutil.copyfile(best, folder / model_name)
    curve = learning_curve(run.path)
    (folder / "learning_curve.json").write_text(json.dumps(curve))
    summary = {"algo": algo, "n_timesteps": int(model.num_timesteps), "model": chosen,
               "resumed_from_timestep": run.resumed_from, "train_seconds": round(time.time() - start, 1),
               "parameter_bytes": parameter_bytes(model)}
    return StageOutcome(summary, [model_name, "learning_curve.json"])


def teacher_stage(settings: dict[str, Any], folder: Path) -> StageOutcome:
    """Train the teacher from its zoo config, or copy the given checkpoint."""
    teacher = settings["teacher"]
    if teacher.get("path"):
        source = Path(teacher["path"]).expanduser()
        if not source.is_file():
            raise FileNotFoundError(f"teacher.path {str(source)!r} not found (relative paths are read from {Path.cwd()})")
        shutil.copyfile(source, folder / "teacher.zip")
        model = _load(teacher["algo"], folder / "teacher.zip")
        (folder / "learning_curve.json").write_text("[]")
        return StageOutcome({"algo": teacher["algo"], "given": str(teacher["path"]), "n_timesteps": int(model.num_timesteps),
                             "parameter_bytes": parameter_bytes(model)}, ["teacher.zip", "learning_curve.json"])
    return _train(teacher["algo"], settings, teacher, folder, zoo_config(teacher["algo"]), teacher.get("hyperparams"),
                  "teacher.zip")


def sdn_stage(settings: dict[str, Any], folder: Path, teacher_path: Path) -> StageOutcome:
    """Distil a spiking student from the teacher (shipped ``configs/zoo/sdn.yml``)."""
    hyperparams = {**(settings["sdn"].get("hyperparams") or {}), "teacher": str(teacher_path.resolve())}
    return _train("sdn", settings, settings["sdn"], folder, zoo_config("sdn"), hyperparams, "student.zip")


def cvtc_stage(settings: dict[str, Any], folder: Path) -> StageOutcome:
    """Train a CVTC Q-network with Double DQN (shipped ``configs/zoo/cvtc.yml``)."""
    cvtc = settings["cvtc"]
    return _train(cvtc["algo"], settings, cvtc, folder, zoo_config("cvtc"), cvtc.get("hyperparams"), "cvtc.zip")


def conversion_stage(settings: dict[str, Any], folder: Path, teacher_path: Path) -> StageOutcome:
    """Convert the teacher to an IF network (``conversion.method``: the paper's or the low-latency one) and sweep T
    and readouts (score, conversion rate, SynOps). With ``conversion.goal``, the conversion rate against the teacher
    on ``held_out`` states it plays is measured at every T, and the smallest T reaching the goal (else the largest)
    is the converted agent's T in the evaluation unless ``evaluation.conversion_timesteps`` sets one."""
    from sb3_snn.conversion import convert
    from sb3_snn.conversion.evaluation import held_out_sweep, sweep

    conv, algo, seed = settings["conversion"], settings["teacher"]["algo"], settings["seed"]
    env = make_env(settings["env"], algo, seed)
    teacher = _load(algo, teacher_path, env)
    method = conv.get("method", "paper")
    extra = {"low_latency": conv["low_latency"]} if conv.get("low_latency") is not None else {}
    policy = convert(teacher, env=env, percentile=conv["percentile"], timesteps=max(conv["timesteps"]),
                     n_calibration=conv["n_calibration"], seed=seed, method=method, **extra)
    policy.save(folder / "converted.pt")
    results = sweep(policy, teacher, env, timesteps=conv["timesteps"], readouts=conv["readouts"],
                    n_episodes=conv["sweep_episodes"], epsilon=settings["evaluation"]["epsilon"], seed=seed)
    rows = [{key: value for key, value in r.as_dict().items() if key not in ("scores", "firing_rates")} for r in results]
    (folder / "sweep.json").write_text(json.dumps(rows, indent=2))
    summary: dict[str, Any] = {"percentile": conv["percentile"], "method": method, "sweep": rows}
    if "goal" in conv:
        held_out = held_out_sweep(policy, teacher, env, sorted(conv["timesteps"]), conv.get("held_out", 1000), seed)
        reaching = [row["timesteps"] for row in held_out if row["conversion_rate"] >= conv["goal"]]
        summary.update(held_out=held_out, chosen_timesteps=min(reaching) if reaching else max(conv["timesteps"]))
    env.close()
    return StageOutcome(summary, ["converted.pt", "sweep.json"])


def converted_timesteps(settings: dict[str, Any], out: Path) -> int:
    """T of the converted agent: ``evaluation.conversion_timesteps`` when set, else the conversion stage's
    smallest T reaching ``conversion.goal``."""
    fixed = settings["evaluation"].get("conversion_timesteps")
    if fixed is not None:
        return int(fixed)
    return int(json.loads((out / "conversion" / "stage.json").read_text())["summary"]["chosen_timesteps"])


def _agents(settings: dict[str, Any], out: Path) -> dict[str, tuple[Any, str]]:
    """Every agent of the stages ``settings`` runs: name -> (acting object, how it acts). A stage switched
    off in the settings contributes no agent, even if an earlier run left its outputs in ``out``."""
    from sb3_snn.conversion import ConvertedQPolicy

    agents: dict[str, tuple[Any, str]] = {"teacher": (_load(settings["teacher"]["algo"], out / "teacher/teacher.zip"), "ANN")}
    if settings.get("sdn"):
        agents["sdn"] = (_load("sdn", out / "sdn/student.zip"), "LIF student (distilled)")
    if settings.get("conversion"):
        converted = ConvertedQPolicy.load(out / "conversion/converted.pt", device="cpu")
        steps = converted_timesteps(settings, out)
        agents["converted"] = (converted.with_settings(steps, "robust"), f"IF, T={steps}, robust readout")
    if settings.get("cvtc"):
        agents["cvtc"] = (_load(settings["cvtc"]["algo"], out / "cvtc/cvtc.zip"), "temporal (CVTC, beta)")
    return agents


#: Most of the teacher's evaluation states on which every agent's agreement with it is measured (evenly spaced).
TEACHER_STATES = 1000


def evaluation_stage(settings: dict[str, Any], folder: Path, out: Path) -> StageOutcome:
    """Play every agent: score, agreement with the teacher's greedy action on the agent's frames and on the
    teacher's own (the states of the teacher's evaluation episodes, at most :data:`TEACHER_STATES` of them,
    Discrete actions only), size; for a discrete-time spiking agent, SynOps per action on 64 observations of
    its own play."""
    from sb3_snn.sdn.evaluation import agreement_on_states
    from sb3_snn.spiking import count_operations, simulate

    evaluation, seed = settings["evaluation"], settings["seed"]
    agents = _agents(settings, out)
    teacher = agents["teacher"][0]
    discrete = isinstance(teacher.action_space, gym_spaces.Discrete)
    rows, observations, visited = [], {}, []  # type: list[dict[str, Any]], dict[str, Any], list[np.ndarray]
    held: np.ndarray | None = None
    for name, (agent, kind) in agents.items():  # the teacher first
        env = make_env(settings["env"], settings["teacher"]["algo"], seed)
        agreement = Agreement(teacher)
        run = play_episodes(agent, env, evaluation["episodes"], epsilon=evaluation["epsilon"], seed=seed,
                            hooks=[lambda obs, _: visited.append(np.array(obs))] if name == "teacher" else [agreement])
        if name == "teacher" and discrete and visited:
            states = np.concatenate(visited)
            held = states[np.linspace(0, len(states) - 1, min(TEACHER_STATES, len(states))).astype(int)]
        row = {"agent": name, "kind": kind, "mean_score": float(np.mean(run.scores)),
               "std_score": float(np.std(run.scores)), "episodes": len(run.scores),
               "agreement": 1.0 if name == "teacher" else agreement.matches / max(run.n_steps, 1),
               "teacher_state_agreement": None if held is None else
               1.0 if name == "teacher" else agreement_on_states(agent, teacher, held),
               "parameter_bytes": parameter_bytes(agent)}
        policy: Any = agent if is_spiking_policy(agent) else getattr(agent, "policy", None)
        if is_spiking_policy(policy):
            description = policy.spiking_description()
            raw = collect_observations(env, 64, greedy_actions(policy), seed=seed)  # the export's calibration frames
            with th.no_grad():
                observations[name] = network_input(policy, raw).cpu().numpy()
            if not description.is_temporal:  # the reference simulation counts SynOps of discrete-time networks
                counts = simulate(description, observations[name]).spike_counts
                row["synops_per_action"] = count_operations(description, counts).synops
        env.close()
        rows.append(row)
    np.savez(folder / "observations.npz", **observations)
    (folder / "evaluation.json").write_text(json.dumps(rows, indent=2))
    return StageOutcome({"rows": rows}, ["evaluation.json", "observations.npz"])


def export_stage(settings: dict[str, Any], folder: Path, out: Path) -> StageOutcome:
    """Compile the chosen spiking agents for the backend; save deployments and reports.

    ``export.options`` configure the backend (``backends.load(name, **options)``); ``export.action_rate_hz``
    is the cost context every backend's ``compile`` takes. A CVTC agent is exported as its beta-free network
    (``set_inference("mostafa")``: Mostafa's neuron, which a chip runs without the beta term). A network the
    backend refuses (it does not fit, or uses what the target cannot run) is reported for that agent, not fatal.
    """
    from sb3_snn import backends

    export = settings["export"]
    backend = backends.load(export["backend"], **(export.get("options") or {}))  # e.g. chip spec overrides
    agents = _agents(settings, out)
    with np.load(out / "evaluation/observations.npz", allow_pickle=False) as saved:
        observations = {name: saved[name] for name in saved.files}
    summary: dict[str, Any] = {"backend": backend.name, "agents": {}}
    outputs = []
    for name in export["agents"]:
        if name not in agents or name not in observations:  # validate_settings allows only the run's spiking agents
            raise ValueError(f"export.agents: {name!r} is not a spiking agent of this run; "
                             f"spiking agents: {', '.join(sorted(observations)) or '(none)'}")
        policy = spiking_policy_of(agents[name][0])
        set_inference = getattr(policy, "set_inference", None)
        if callable(set_inference):  # a CVTC agent: chips run its beta-free network
            set_inference("mostafa")
        try:
            deployment = backend.compile(policy.spiking_description(), observations[name][: export["n_calibration"]],
                                         action_rate_hz=export["action_rate_hz"])
        except (backends.FitError, backends.UnsupportedNetworkError) as exc:  # a real limit of the target: said, not fatal
            (folder / f"{name}_report.txt").write_text(f"not exported to {backend.name}: {exc}\n")
            outputs.append(f"{name}_report.txt")
            summary["agents"][name] = {"error": str(exc), "error_type": type(exc).__name__}
            continue
        report = deployment.report()
        deployment.save(folder / name)
        (folder / f"{name}_report.txt").write_text(str(report))
        outputs.append(f"{name}_report.txt")
        summary["agents"][name] = {"metrics": report.metrics, "report": report.to_dict()}
    return StageOutcome(summary, outputs)


def _load(algo: str, path: Path, env: VecEnv | None = None) -> BaseAlgorithm:
    """A model a stage saved, of a registered or zoo algorithm (the zoo's tables filled in first)."""
    install_algos()
    return load_model(path, algo=algo, env=env)
