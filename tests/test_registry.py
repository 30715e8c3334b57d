"""The plugin registry: our own entries, a third-party plugin installed for real, a broken plugin."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from stable_baselines3 import DQN

import sb3_snn
from sb3_snn import registry

from conftest import run_cli

DUMMY_PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "sb3-snn-dummy-plugin"
version = "0.0.1"

[tool.setuptools]
py-modules = ["sb3_snn_dummy", "sb3_snn_dummy_broken"]

[project.entry-points."sb3_snn.policies"]
DummyQPolicy = "sb3_snn_dummy:DummyQPolicy"
NotAPolicy = "sb3_snn_dummy:NotAPolicy"

[project.entry-points."sb3_snn.algos"]
broken_algo = "sb3_snn_dummy_broken:Nothing"
not_a_class = "sb3_snn_dummy:SETTINGS"

[project.entry-points."sb3_snn.backends"]
nir = "sb3_snn_dummy:ShadowNIR"
function_backend = "sb3_snn_dummy:make_backend"
"""

DUMMY_MODULE = '''
"""A third-party policy: a Q-network with a narrower default architecture."""
from stable_baselines3.dqn.policies import DQNPolicy


class DummyQPolicy(DQNPolicy):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("net_arch", [8])
        super().__init__(*args, **kwargs)


SETTINGS = {"not": "an algorithm"}  # registered as an algo by mistake


class NotAPolicy:  # registered as a policy, but no BasePolicy
    pass


def make_backend():  # registered as a backend, but a function
    return None


from sb3_snn.backends.nir_backend import NIRBackend  # noqa: E402


class ShadowNIR(NIRBackend):
    """A third-party backend that registers the built-in name "nir"."""
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """Build and install (``pip install --target``) a dummy plugin distribution with one good policy, one
    algo whose module raises on import, entries of the wrong kind and a backend named like the built-in ``nir``."""
    src = tmp_path_factory.mktemp("dummy_src")
    (src / "pyproject.toml").write_text(DUMMY_PYPROJECT)
    (src / "sb3_snn_dummy.py").write_text(DUMMY_MODULE)
    (src / "sb3_snn_dummy_broken.py").write_text("raise RuntimeError('this plugin is broken on purpose')\n")
    site = tmp_path_factory.mktemp("dummy_site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(src)],
        check=True, capture_output=True, text=True,
    )
    assert list(site.glob("sb3_snn_dummy_plugin-*.dist-info"))
    return site


def test_own_entries_are_registered():
    assert registry.get_algo("ddqn") is sb3_snn.DDQN
    assert registry.plugins("algos")["ddqn"].distribution == "sb3-snn"


def test_unknown_names_list_the_registered_ones():
    with pytest.raises(registry.UnknownPluginError, match=r"unknown algo 'nope'; registered algos: .*ddqn"):
        registry.get_algo("nope")
    with pytest.raises(registry.UnknownPluginError, match="registered backends"):
        registry.get_backend("no-such-chip")
    with pytest.raises(ValueError, match="unknown plugin group"):
        registry.plugins("widgets")


def test_list_shows_ddqn(tmp_path):
    out = run_cli(["-m", "sb3_snn", "list"], cwd=tmp_path).stdout
    assert "ddqn" in out and "sb3_snn.ddqn:DDQN" in out and "sb3-snn" in out


def test_converted_policy_is_registered_but_serves_no_algorithm(tmp_path):
    """ConvertedQPolicy is built by sb3_snn.convert, not trained: registered, in no policy_aliases, listed
    with what builds it."""
    plugin = registry.plugins("policies")["ConvertedQPolicy"]
    assert plugin.target is sb3_snn.ConvertedQPolicy and plugin.served_algos == ()
    assert all("ConvertedQPolicy" not in getattr(algo, "policy_aliases", {}) for algo in registry.sb3_algorithms().values())
    listing = run_cli(["-m", "sb3_snn", "list"], cwd=tmp_path).stdout.splitlines()
    line = next(line for line in listing if "ConvertedQPolicy" in line)
    assert "[built by: sb3_snn.convert]" in line and "serves" not in line


def test_installed_plugin_appears_in_list_and_broken_one_warns(plugin_site, tmp_path):
    proc = run_cli(["-m", "sb3_snn", "list"], cwd=tmp_path, env={"PYTHONPATH": str(plugin_site)})
    assert "DummyQPolicy" in proc.stdout and "sb3-snn-dummy-plugin" in proc.stdout
    assert "serves: dqn, ddqn" in proc.stdout
    assert "ddqn" in proc.stdout  # the rest still loads
    assert "broken_algo" in proc.stderr and "sb3-snn-dummy-plugin" in proc.stderr
    assert "broken on purpose" in proc.stderr


def test_plugin_policy_works_through_alias_in_plain_sb3(plugin_site, tmp_path):
    script = textwrap.dedent(
        """
        import warnings
        warnings.simplefilter("ignore")
        import sb3_snn  # registers the aliases
        from stable_baselines3 import DQN
        from sb3_snn import DDQN
        for algo in (DQN, DDQN):
            model = algo("DummyQPolicy", "CartPole-v1", learning_starts=10, buffer_size=100, seed=0)
            model.learn(50)
            assert type(model.policy).__name__ == "DummyQPolicy", type(model.policy)
            assert model.q_net.q_net[0].out_features == 8
        print("ok")
        """
    )
    proc = run_cli(["-c", script], cwd=tmp_path, env={"PYTHONPATH": str(plugin_site)})
    assert proc.stdout.strip().endswith("ok")


@pytest.mark.expensive
def test_plugin_policy_trains_with_stock_rl_zoo(plugin_site, tmp_path):
    run_cli(
        ["-m", "rl_zoo3.train", "--algo", "dqn", "--env", "CartPole-v1", "--gym-packages", "sb3_snn",
         "-params", "policy:'DummyQPolicy'", "learning_starts:50", "-n", "300", "--eval-freq", "-1", "-tb", "tb",
         "--seed", "0"],
        cwd=tmp_path, env={"PYTHONPATH": str(plugin_site)},
    )
    assert (tmp_path / "logs/dqn/CartPole-v1_1/CartPole-v1.zip").is_file()
    config = (tmp_path / "logs/dqn/CartPole-v1_1/CartPole-v1/config.yml").read_text()
    assert "DummyQPolicy" in config


def test_broken_plugin_warning_names_it_in_process(plugin_site, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_site))
    registry.refresh()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            algos = registry.plugins("algos")
        assert "ddqn" in algos and "broken_algo" not in algos
        messages = [str(w.message) for w in caught if issubclass(w.category, registry.PluginLoadWarning)]
        assert any("broken_algo" in m and "sb3-snn-dummy-plugin" in m for m in messages)
        assert "DummyQPolicy" in registry.plugins("policies")
    finally:
        monkeypatch.undo()
        registry.refresh()


def test_aliases_do_not_leak_into_stock_policy_table_of_unrelated_algos():
    from stable_baselines3 import PPO

    for name in registry.plugins("policies"):
        plugin = registry.plugins("policies")[name]
        if "ppo" not in plugin.served_algos:
            assert name not in PPO.policy_aliases
    assert "MlpPolicy" in DQN.policy_aliases


def test_plugins_of_the_wrong_kind_are_skipped_and_named(plugin_site, monkeypatch):
    """An algo that is not a BaseAlgorithm subclass, a policy that is not a BasePolicy subclass and a backend
    that is not a class are skipped with a warning naming them and their distribution; ``--algo`` tables still
    build (no ``issubclass() arg 1 must be a class``)."""
    from sb3_snn.zoo.algos import install_algos

    monkeypatch.syspath_prepend(str(plugin_site))
    registry.refresh()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            algos, policies, backends = (registry.plugins(kind) for kind in ("algos", "policies", "backends"))
            table = install_algos()
        messages = [str(w.message) for w in caught if issubclass(w.category, registry.PluginLoadWarning)]
        for name, reason in (("not_a_class", "not a class"), ("NotAPolicy", "not a BasePolicy subclass"),
                             ("function_backend", "not a class")):
            assert any(f"{name!r}" in m and "sb3-snn-dummy-plugin" in m and reason in m for m in messages), (name, messages)
        assert "not_a_class" not in algos and "NotAPolicy" not in policies and "function_backend" not in backends
        assert "ddqn" in table and "DummyQPolicy" in policies
    finally:
        monkeypatch.undo()
        registry.refresh()


def test_a_plugin_never_replaces_a_builtin_name(plugin_site, monkeypatch):
    """The dummy distribution registers ``nir`` too: the built-in keeps the name, the clash is warned, and
    ``"distribution:name"`` selects the plugin's."""
    from sb3_snn import backends
    from sb3_snn.backends.nir_backend import NIRBackend

    monkeypatch.syspath_prepend(str(plugin_site))
    registry.refresh()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert type(backends.load("nir")) is NIRBackend
        messages = [str(w.message) for w in caught if issubclass(w.category, registry.PluginLoadWarning)]
        assert any("'nir'" in m and "sb3-snn-dummy-plugin:nir" in m for m in messages), messages
        assert registry.plugins("backends")["nir"].distribution == "sb3-snn"
        assert type(backends.load("sb3-snn-dummy-plugin:nir")).__name__ == "ShadowNIR"
        assert backends.load("sb3-snn:nir").name == "nir"
    finally:
        monkeypatch.undo()
        registry.refresh()
