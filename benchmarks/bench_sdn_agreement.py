"""SDN students distilled with the default settings from plain-SB3 CartPole-v1 DQN teachers: agreement with
the teacher on the teacher's own states, and score.

Teachers: DQN with rl_zoo3's tuned CartPole-v1 settings (``sb3_snn/configs/zoo/dqn.yml``, 50 000 steps),
trained by plain SB3 and cached under ``benchmarks/out/`` (git-ignored; trained here when missing, about a
minute each): ``benchmarks/out/nc64c_teachers/dqn_{256x256,64x64}_seed*.zip`` (``bench_nc64c_agreement.py``)
and ``benchmarks/out/sdn_agreement_teachers/dqn_256x256_seed{3,4,5}.zip``. ``--odd`` adds two teachers
whose last model plays badly (``dqn_256x256_seed0``, ``dqn_64x64_seed1``): a student should follow them too.

Student: ``SDN("SDNPolicy", env, seed=s)`` + ``DistillationCallback(teacher)``, nothing else given, so the
class defaults are measured (the ``CartPole-v1`` section of ``configs/zoo/sdn.yml`` holds the same values).
After 2 000, 5 000 and 10 000 environment steps the student's greedy action is compared with the teacher's
on states the teacher visited (:func:`sb3_snn.sdn.evaluation.teacher_states`, held out: other env seeds than
the student's): 2 000 states with the teacher acting with epsilon 0.05 (env seed 10 000) and 2 000 with it
acting greedily (env seed 20 000). The final student and the teacher then play the same 30 greedy episodes
(env seeds 1000-1029, paired).

Rows: suite ``sdn_agreement`` (``benchmarks/records/sdn_agreement.jsonl``), one per teacher x student seed x
measurement, and the means over them (``seed=None``).

    python benchmarks/bench_sdn_agreement.py                 # 6 teachers x 2 student seeds
    python benchmarks/bench_sdn_agreement.py --odd           # and the two odd teachers
    python benchmarks/bench_sdn_agreement.py --quick         # 1 teacher, 1 seed, 5 000 steps, 10 episodes
    # in parallel, one process per teacher and seed, then the means over the runs of this commit:
    python benchmarks/bench_sdn_agreement.py --teachers dqn_64x64_seed0 --seeds 1 --no-summary
    python benchmarks/bench_sdn_agreement.py --summarize
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import zoo_dqn_settings
from benchmarks.records import Row, append_rows, load_rows, run_info
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

from sb3_snn.common.evaluation import play_episodes
from sb3_snn.sdn import SDN, DistillationCallback, as_teacher
from sb3_snn.sdn.evaluation import agreement_on_states, teacher_states

ROOT = Path(__file__).resolve().parents[1]
SUITE = "sdn_agreement"
ENV = "CartPole-v1"
#: rl_zoo3's hyperparams/dqn.yml CartPole-v1 settings (net_arch per teacher)
ZOO_DQN, ZOO_STEPS = zoo_dqn_settings(ENV)
OUT = ROOT / "benchmarks" / "out"
#: name -> (zip, net_arch, training seed)
TEACHERS = {
    "dqn_256x256_seed1": (OUT / "nc64c_teachers" / "dqn_256x256_seed1.zip", (256, 256), 1),
    "dqn_256x256_seed2": (OUT / "nc64c_teachers" / "dqn_256x256_seed2.zip", (256, 256), 2),
    "dqn_64x64_seed0": (OUT / "nc64c_teachers" / "dqn_64x64_seed0.zip", (64, 64), 0),
    "dqn_256x256_seed3": (OUT / "sdn_agreement_teachers" / "dqn_256x256_seed3.zip", (256, 256), 3),
    "dqn_256x256_seed4": (OUT / "sdn_agreement_teachers" / "dqn_256x256_seed4.zip", (256, 256), 4),
    "dqn_256x256_seed5": (OUT / "sdn_agreement_teachers" / "dqn_256x256_seed5.zip", (256, 256), 5),
}
ODD_TEACHERS = {
    "dqn_256x256_seed0": (OUT / "nc64c_teachers" / "dqn_256x256_seed0.zip", (256, 256), 0),
    "dqn_64x64_seed1": (OUT / "nc64c_teachers" / "dqn_64x64_seed1.zip", (64, 64), 1),
}
CHECKPOINTS = (2000, 5000, 10_000)
#: held-out teacher states: (name, epsilon, env seed)
STATE_SETS = (("eps0.05", 0.05, 10_000), ("greedy", 0.0, 20_000))
N_STATES = 2000
EPISODE_SEED = 1000


def load_or_train_teacher(path: Path, arch: tuple[int, ...], seed: int) -> Any:
    """The cached plain-SB3 DQN at ``path``, trained with the zoo settings first when missing."""
    from stable_baselines3 import DQN

    if path.is_file():
        return DQN.load(path, device="cpu", buffer_size=1)
    model = DQN(
        "MlpPolicy",
        make_vec_env(ENV, n_envs=1, seed=seed),
        policy_kwargs=dict(net_arch=list(arch)),
        seed=seed,
        device="cpu",
        **ZOO_DQN,
    )
    model.learn(ZOO_STEPS)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path, exclude=["replay_buffer"])
    return model


class AgreementCheckpoints(BaseCallback):
    """Agreement on each held-out state set at the given environment steps."""

    def __init__(self, teacher: Any, states: dict[str, np.ndarray], at: tuple[int, ...]) -> None:
        super().__init__()
        self.teacher, self.states, self.at = teacher, states, set(at)
        self.results: dict[int, dict[str, float]] = {}

    def _on_step(self) -> bool:
        if self.num_timesteps in self.at:
            self.results[self.num_timesteps] = {
                name: agreement_on_states(self.model, self.teacher, obs) for name, obs in self.states.items()
            }
        return True


def scores(actor: Any, episodes: int) -> list[float]:
    """Greedy returns on env seeds ``EPISODE_SEED + i`` (the same episodes for every actor)."""
    env = make_vec_env(ENV, n_envs=1)
    run = play_episodes(actor, env, episodes, epsilon=0.0, seed=EPISODE_SEED)
    env.close()
    return run.scores


def row(
    experiment: str,
    teacher: str,
    seed: int | None,
    metric: str,
    value: float,
    unit: str,
    stderr: float | None = None,
    n: int | None = None,
    **setting: Any,
) -> Row:
    """A record of this suite (the student's settings are the class defaults)."""
    return Row(
        suite=SUITE,
        experiment=experiment,
        method="SDN",
        env=ENV,
        setting={"teacher": teacher, "student_settings": "SDN class defaults", **setting},
        seed=seed,
        metric=metric,
        value=value,
        stderr=stderr,
        n=n,
        unit=unit,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 teacher, 1 seed, 5 000 steps, 10 episodes")
    parser.add_argument("--odd", action="store_true", help="also the two teachers whose last model plays badly")
    parser.add_argument("--teachers", default=None, help="comma-separated teacher names (default: all)")
    parser.add_argument("--seeds", default="0,1", help="student seeds")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--no-records", action="store_true", help="print only, append no rows")
    parser.add_argument("--no-summary", action="store_true", help="no mean rows (a part of a parallel run)")
    parser.add_argument(
        "--summarize", action="store_true", help="only append the mean rows over the per-run rows recorded at this commit"
    )
    args = parser.parse_args()
    if args.summarize:
        summarize()
        return
    th.set_num_threads(1)
    teachers = {**TEACHERS, **(ODD_TEACHERS if args.odd else {})}
    if args.teachers:
        unknown = [name for name in args.teachers.split(",") if name not in {**TEACHERS, **ODD_TEACHERS}]
        if unknown:
            parser.error(f"unknown teacher(s) {unknown}; known: {sorted({**TEACHERS, **ODD_TEACHERS})}")
        teachers = {name: {**TEACHERS, **ODD_TEACHERS}[name] for name in args.teachers.split(",")}
    seeds = [int(s) for s in args.seeds.split(",")]
    checkpoints, episodes = CHECKPOINTS, args.episodes
    if args.quick:
        teachers, seeds = dict(list(teachers.items())[:1]), seeds[:1]
        checkpoints, episodes = (2000, 5000), 10
    rows: list[Row] = []
    final: dict[str, list[float]] = {}
    for name, (path, arch, train_seed) in teachers.items():
        model = load_or_train_teacher(path, arch, train_seed)
        teacher = as_teacher(model)
        states = {
            label: teacher_states(teacher, make_vec_env(ENV, n_envs=1), N_STATES, epsilon, env_seed)
            for label, epsilon, env_seed in STATE_SETS
        }
        teacher_scores = scores(model, episodes)
        rows.append(
            row(
                "teacher",
                name,
                train_seed,
                "mean_return",
                float(np.mean(teacher_scores)),
                "return",
                float(np.std(teacher_scores) / np.sqrt(len(teacher_scores))),
                len(teacher_scores),
                net_arch=list(arch),
                training_seeds=1,
                episode_seeds=f"{EPISODE_SEED}+i",
            )
        )
        for seed in seeds:
            student = SDN("SDNPolicy", make_vec_env(ENV, n_envs=1, seed=seed), seed=seed, device="cpu")
            checks = AgreementCheckpoints(teacher, states, checkpoints)
            start = time.time()
            student.learn(max(checkpoints), callback=[DistillationCallback(model), checks])
            seconds = time.time() - start
            for steps, by_set in sorted(checks.results.items()):
                for label, value in by_set.items():
                    rows.append(
                        row(
                            "agreement_on_teacher_states",
                            name,
                            seed,
                            "agreement",
                            value,
                            "fraction",
                            n=N_STATES,
                            env_steps=steps,
                            states=label,
                            training_seeds=1,
                        )
                    )
                    final.setdefault(f"{steps}/{label}", []).append(value)
            student_scores = scores(student, episodes)
            gap = np.asarray(teacher_scores) - np.asarray(student_scores)
            rows.append(
                row(
                    "score",
                    name,
                    seed,
                    "mean_return",
                    float(np.mean(student_scores)),
                    "return",
                    float(np.std(student_scores) / np.sqrt(len(student_scores))),
                    len(student_scores),
                    env_steps=max(checkpoints),
                    training_seeds=1,
                    episode_seeds=f"{EPISODE_SEED}+i",
                )
            )
            rows.append(
                row(
                    "score",
                    name,
                    seed,
                    "paired_return_gap",
                    float(np.mean(gap)),
                    "return",
                    float(np.std(gap) / np.sqrt(len(gap))),
                    len(gap),
                    env_steps=max(checkpoints),
                    training_seeds=1,
                    note="teacher minus student, same episodes",
                )
            )
            rows.append(
                row("cost", name, seed, "distillation_time", seconds, "s", env_steps=max(checkpoints), training_seeds=1)
            )
            summary = {steps: {k: round(v, 4) for k, v in s.items()} for steps, s in sorted(checks.results.items())}
            print(
                f"{name} seed {seed}: agreement {summary}; score {np.mean(student_scores):.1f} "
                f"(teacher {np.mean(teacher_scores):.1f}); {seconds:.0f} s",
                flush=True,
            )
    if not args.no_summary:
        rows += mean_rows(final, sorted(teachers))
    if not args.no_records:
        print("rows appended to", append_rows(SUITE, rows))


def mean_rows(final: dict[str, list[float]], teachers: list[str]) -> list[Row]:
    """Means over runs of the agreement, per number of steps and state set (``"steps/states"`` keys)."""
    rows = []
    for key, values in sorted(final.items()):
        steps, label = key.split("/")
        rows.append(
            row(
                "agreement_on_teacher_states",
                "all",
                None,
                "agreement",
                float(np.mean(values)),
                "fraction",
                float(np.std(values) / np.sqrt(len(values))),
                len(values),
                env_steps=int(steps),
                states=label,
                training_seeds=len(values),
                minimum=float(np.min(values)),
                teachers=teachers,
            )
        )
        print(f"{steps:>6} steps, {label:8s}: mean {np.mean(values):.4f}, min {np.min(values):.4f} over {len(values)} runs")
    return rows


def summarize() -> None:
    """Append the mean rows over the per-run agreement rows recorded at the current commit."""
    commit = run_info().get("commit")
    final: dict[str, list[float]] = {}
    teachers: set[str] = set()
    for record in load_rows(SUITE):
        if (
            record.experiment == "agreement_on_teacher_states"
            and record.seed is not None
            and record.extra.get("run", {}).get("commit") == commit
        ):
            final.setdefault(f"{record.setting['env_steps']}/{record.setting['states']}", []).append(record.value)
            teachers.add(record.setting["teacher"])
    if not final:
        raise SystemExit(f"no per-run rows of suite {SUITE!r} recorded at commit {commit}")
    print("rows appended to", append_rows(SUITE, mean_rows(final, sorted(teachers))))


if __name__ == "__main__":
    main()
