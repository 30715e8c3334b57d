"""benchmarks/report.py: docs/results.md and the README block come from the records, none lost."""

from __future__ import annotations

import importlib.util
import json
import shutil

from conftest import ROOT

RECORDS = ROOT / "tests/data/report_records"


def _report():
    spec = importlib.util.spec_from_file_location("benchmarks_report", ROOT / "benchmarks/report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_of_recorded_benchmarks_keeps_every_command_and_machine(tmp_path):
    """Four records as the benchmarks wrote them (frozen copies in tests/data/report_records), one per
    family the summary reads: DDQN, pipeline, CVTC speed on a GPU, conversion speed."""
    report = _report()
    results = tmp_path / "results"
    shutil.copytree(RECORDS, results)
    readme = tmp_path / "README.md"
    readme.write_text(f"# project\n\n{report.START}\nstale block\n{report.END}\n\nafter the block\n")
    out = tmp_path / "docs/results.md"

    report.main(["--results", str(results), "--out", str(out), "--readme", str(readme)])

    text = out.read_text()
    paths = sorted(results.glob("*.json"))
    assert len(paths) == 4
    for path in paths:
        record = json.loads(path.read_text())
        assert f"### {path.name}" in text, path.name
        assert f"`{record['command']}`" in text, path.name
        assert str(record["machine"]) in text, path.name
    for heading in ("## Summary", "## SDN", "## CVTC", "## Conversion", "## Speed ratios", "## Appendix"):
        assert heading in text
    # the papers' figures beside ours: SDN Table 1 teacher size, conversion Pong row
    assert "892" in text and "19.9 ± 1.2" in text and "19.8 ± 1.3" in text
    # the figures of the records reach the tables: the pipeline's agents, the machines' short names
    pipeline = json.loads((results / "pipeline_cartpole.json").read_text())
    for row in pipeline["rows"]:
        assert f"| {row['agent']} |" in text, row["agent"]
    assert "2-core CPU" in text and "H100 box, GPU" in text
    block = readme.read_text()
    assert "stale block" not in block and block.endswith("after the block\n")
    assert "[docs/results.md](docs/results.md)" in block and "| issue | target | reached | status | source |" in block


def test_report_survives_records_of_any_shape(tmp_path):
    report = _report()
    records = {
        "broken.json": '{"command": "half written", "rows": [',
        "not_an_object.json": "[1, 2]",
        "empty.json": "{}",
        "conversion_x.json": {"command": "cmd-conversion", "rows": ["a", {"T": "-"}, {"T": 500, "readout": "robust"}]},
        "cvtc_results.json": {"command": "cmd-cvtc", "rows": [{"row": "cvtc"}, {"env": "MountainCar-v0", "row": "cvtc",
                                                                          "seed": 0, "mean_reward": -110.0}]},
        "cvtc_speed.json": {"command": "cmd-speed", "rows": [{"candidate": "mlp"}, {"candidate": "cvtc_fast"}]},
        "conversion_speed_cpu.json": {"command": "cmd-conv-speed", "rows": [{"simulation": "x"}, {"batch": 1}]},
        "sdn_a.json": {"command": "cmd-sdn-a", "teachers": {"dqn": {}, "ppo": 3}},
        "sdn_b.json": {"command": "cmd-sdn-b", "machine": {"cpu_count": 2}, "rows": {"frames": {"student": {"mean": -3}}},
                       "latency": {"command": "cmd-latency", "machine": "somewhere"}},
        "nc64c_bitwidth.json": {"command": "cmd-nc64c", "default_agreement": {"n": "?"}, "rows": [{"network": "n"}]},
        "pipeline_cartpole.json": {"command": "cmd-pipeline", "rows": [{"agent": "teacher"}], "headline": "no time"},
        "ddqn_cartpole.json": {"command": "cmd-ddqn", "rows": [{"seed": 0, "model": "last", "mean_reward": None}]},
        "something_new.json": {"command": "cmd-new", "rows": {"a": 1, "b": {"c": {"d": 2.5}}}},
    }
    results = tmp_path / "results"
    results.mkdir()
    for name, content in records.items():
        (results / name).write_text(content if isinstance(content, str) else json.dumps(content))
    out = tmp_path / "results.md"

    report.main(["--results", str(results), "--out", str(out), "--readme", "none"])

    text = out.read_text()
    assert text.count("Unreadable") == 2
    for content in records.values():
        if isinstance(content, dict):
            assert f"`{content['command']}`" in text
    assert "`cmd-latency`" in text
    assert "| a | 1 |" in text and "c.d" in text  # a record of no known family: its rows in full
