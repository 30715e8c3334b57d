"""Render the NC64C spec's provenance and the chip-fit statements into docs/hardware.md and README.md.

    .venv/bin/python plugins/sb3-snn-nc64c/scripts/render_docs.py           # rewrite the marked blocks
    .venv/bin/python plugins/sb3-snn-nc64c/scripts/render_docs.py --check   # exit 1 if a block is stale

Each generated text sits between ``<!-- nc64c:NAME:begin -->`` and ``<!-- nc64c:NAME:end -->`` markers:

- ``provenance`` (docs/hardware.md): every :class:`ChipSpec` field with its default, label (fact /
  inference / assumption), source and basis, from :data:`sb3_snn_nc64c.spec.PROVENANCE`, and the
  published facts (:data:`sb3_snn_nc64c.spec.PUBLISHED_FACTS`);
- ``fit`` (docs/hardware.md): :func:`sb3_snn_nc64c.fit_report` at the default spec for the project's
  networks, built with the architectures they have (the fit depends on shapes only, so the weights are
  untrained): SB3's NatureCNN policy converted (the Pong teacher ``../shared/fixtures/ppo_pong``), the
  rl_zoo3 CartPole / Acrobot DQNs ([256, 256]) and Pendulum TD3 actor ([400, 300]) converted, and SDN
  students with the zoo configs' (``sb3_snn/configs/zoo/sdn.yml``) CartPole, Pendulum and Pong architectures;
- ``pong-fit`` (docs/hardware.md and README.md): the converted Pong NatureCNN's fit in one sentence.

``plugins/sb3-snn-nc64c/tests/test_nc64c_fit.py`` runs :func:`stale_blocks` so the documents cannot go stale.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml
from gymnasium import spaces

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs" / "hardware.md"
README = ROOT / "README.md"
PONG = "converted Pong NatureCNN"


def _thousands(n: int) -> str:
    """``3136`` -> ``3 136`` (the documents' number style)."""
    return f"{n:,}".replace(",", " ")


class _ShapeEnv(gym.Env):
    """An environment with given spaces that only resets (enough to build a model of the right shapes)."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        return self.observation_space.sample(), 0.0, False, False, {}


def _zoo_policy_kwargs(env_id: str) -> dict[str, Any]:
    """``policy_kwargs`` of ``env_id``'s section in ``sb3_snn/configs/zoo/sdn.yml`` (a ``dict(...)`` of literals,
    parsed without evaluating code)."""
    section = yaml.safe_load((ROOT / "sb3_snn" / "configs" / "zoo" / "sdn.yml").read_text())[env_id]
    call = ast.parse(section["policy_kwargs"], mode="eval").body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "dict"):
        raise ValueError(f"sdn.yml {env_id}: policy_kwargs is not dict(...) of literals")
    return {str(keyword.arg): ast.literal_eval(keyword.value) for keyword in call.keywords}


def networks() -> dict[str, Any]:
    """The project's networks as spiking descriptions (untrained weights, the real architectures)."""
    import torch as th
    from stable_baselines3 import DQN, TD3
    from stable_baselines3.common.policies import ActorCriticCnnPolicy

    from sb3_snn import SDN, convert

    th.manual_seed(0)
    rng = np.random.default_rng(0)
    pong_obs = spaces.Box(0, 255, (4, 84, 84), np.uint8)
    pong = ActorCriticCnnPolicy(pong_obs, spaces.Discrete(6), lambda _: 0.0)
    frames = rng.integers(0, 256, (4, 4, 84, 84)).astype(np.uint8)
    result: dict[str, Any] = {
        PONG: convert(pong, calibration_obs=frames, timesteps=100).spiking_description(),
    }
    for env_id, label in (
        ("CartPole-v1", "converted CartPole DQN [256, 256]"),
        ("Acrobot-v1", "converted Acrobot DQN [256, 256]"),
    ):
        env = gym.make(env_id)
        model = DQN("MlpPolicy", env, policy_kwargs={"net_arch": [256, 256]}, buffer_size=1, device="cpu", seed=0)
        obs = np.stack([env.observation_space.sample() for _ in range(16)])
        result[label] = convert(model, calibration_obs=obs, timesteps=200).spiking_description()
    pendulum = gym.make("Pendulum-v1")
    td3 = TD3("MlpPolicy", pendulum, policy_kwargs={"net_arch": [400, 300]}, buffer_size=1, device="cpu", seed=0)
    obs = np.stack([pendulum.observation_space.sample() for _ in range(16)])
    result["converted Pendulum TD3 actor [400, 300]"] = convert(td3, calibration_obs=obs, timesteps=32).spiking_description()
    students = (
        ("CartPole-v1", "SDNPolicy", gym.make("CartPole-v1")),
        ("Pendulum-v1", "SDNPolicy", pendulum),
        ("PongNoFrameskip-v4", "SDNCnnPolicy", _ShapeEnv(pong_obs, spaces.Discrete(6))),
    )
    for env_id, policy, env in students:
        kwargs = _zoo_policy_kwargs(env_id)
        agent = SDN(policy, env, policy_kwargs=kwargs, buffer_size=1, device="cpu", seed=0)
        result[f"SDN {env_id.split('NoFrameskip')[0].split('-')[0]} student (zoo config)"] = agent.policy.spiking_description()
    return result


def provenance_block() -> str:
    """The spec's provenance as a Markdown table, then the published facts."""
    from sb3_snn_nc64c.spec import PUBLISHED_FACTS, ChipSpec

    spec = ChipSpec()
    lines = ["| parameter | default | label | source | basis |", "|---|---|---|---|---|"]
    for key, record in spec.provenance().items():
        value = record["value"]
        if key == "energy_per_input_mac_pj" and value is None:
            value = f"None ({spec.input_mac_energy_pj:.3g} pJ at the default widths)"
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        label = f"**{record['label']}**" if record["label"] != "assumption" else record["label"]
        lines.append(f"| `{key}` | {value} | {label} | {record['source']} | {record['basis']} |")
    lines += [
        "",
        "Published facts about the chip that are not spec parameters:",
        "",
        "| fact | value | source | note |",
        "|---|---|---|---|",
    ]
    for name, (value, provenance) in PUBLISHED_FACTS.items():
        lines.append(f"| {name} | {value} | {provenance.source} | {provenance.basis} |")
    return "\n".join(lines)


def pong_sentence(report: Any, conv_layers: list[str]) -> str:
    """The converted Pong NatureCNN's fit, computed: the convolutions' cores and the dense layer no core holds.

    :param report: its :class:`~sb3_snn_nc64c.FitReport`
    :param conv_layers: the names of its conv layers
    """
    convs = {name: cores for name, cores in report.cores.items() if name in conv_layers}
    parts = " + ".join(str(c) for c in convs.values())
    text = (
        f"the converted Pong NatureCNN does not fit the {report.limit}-core NC64C model: its "
        f"{_count_word(len(convs))} convolutions need {sum(convs.values())} cores ({parts})"
    )
    for need in report.unmappable.values():
        text += (
            f" and its {_thousands(need.required)}-input dense layer cannot be mapped with "
            f"{_thousands(need.limit)} axons per core"
        )
    return text


def _count_word(n: int) -> str:
    return {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}.get(n, str(n))


def fit_reports(descriptions: dict[str, Any]) -> dict[str, Any]:
    """:func:`fit_report` of each network at the default spec."""
    from sb3_snn_nc64c import ChipSpec, fit_report

    return {name: fit_report(description, ChipSpec()) for name, description in descriptions.items()}


def fit_block(reports: dict[str, Any]) -> str:
    """A Markdown table: every network's cores per layer, the total, and whether it fits."""
    lines = ["| network | cores per layer | cores (mappable layers) | fits the 64-core default |", "|---|---|---|---|"]
    for name, report in reports.items():
        per_layer = ", ".join(
            f"{layer} {need}"
            if isinstance(need, int)
            else f"{layer} cannot be mapped ({_thousands(need.required)} inputs > {_thousands(need.limit)} axons per core)"
            for layer, need in report.layers.items()
        )
        verdict = "yes"
        if not report.fits:
            reasons = [f"{report.total_cores} cores > {report.limit}"] if report.total_cores > report.limit else []
            reasons += [f"{len(report.unmappable)} layer(s) cannot be mapped"] if report.unmappable else []
            verdict = f"**no**: {'; '.join(reasons)}"
        lines.append(f"| {name} | {per_layer} | {report.total_cores} | {verdict} |")
    return "\n".join(lines)


def blocks() -> dict[Path, dict[str, str]]:
    """Per document, the generated text of each marked block."""
    descriptions = networks()
    reports = fit_reports(descriptions)
    pong = pong_sentence(reports[PONG], [layer.name for layer in descriptions[PONG].layers if layer.kind == "conv2d"])
    return {DOCS: {"provenance": provenance_block(), "fit": fit_block(reports), "pong-fit": pong}, README: {"pong-fit": pong}}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- nc64c:{re.escape(name)}:begin -->)(.*?)(<!-- nc64c:{re.escape(name)}:end -->)", re.S)


def render(text: str, generated: dict[str, str], inline: set[str]) -> str:
    """``text`` with every marked block replaced by its generated content.

    :raises ValueError: a block's markers are missing
    """
    for name, content in generated.items():
        pattern = _pattern(name)
        if not pattern.search(text):
            raise ValueError(f"no <!-- nc64c:{name}:begin/end --> markers")
        body = content if name in inline else f"\n{content}\n"
        text = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(3), text)
    return text


INLINE = {"pong-fit"}


def stale_blocks() -> list[str]:
    """``"<file>: <block>"`` for every generated block whose text in the document differs."""
    stale = []
    for path, generated in blocks().items():
        text = path.read_text(encoding="utf-8")
        for name, content in generated.items():
            if render(text, {name: content}, INLINE) != text:
                stale.append(f"{path.relative_to(ROOT)}: {name}")
    return stale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated block is stale")
    args = parser.parse_args()
    if args.check:
        stale = stale_blocks()
        for item in stale:
            print(f"stale: {item} (run plugins/sb3-snn-nc64c/scripts/render_docs.py)")
        return 1 if stale else 0
    for path, generated in blocks().items():
        path.write_text(render(path.read_text(encoding="utf-8"), generated, INLINE), encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
