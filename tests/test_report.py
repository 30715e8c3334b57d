"""benchmarks/report.py renders docs/results.md and the README block from benchmark records alone;
benchmarks/records.py validates rows on construction, on write and on read."""

from __future__ import annotations

import json
import math
import shutil
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT))
from benchmarks import report
from benchmarks.records import Row, append_rows, load_rows
from benchmarks.result_rows import rows_from_record

FIXTURES = ROOT / "tests/fixtures/records"


def _row(**changes):
    base = dict(
        suite="demo",
        experiment="cartpole",
        method="SDN",
        env="CartPole-v1",
        setting={"training_seeds": 1},
        seed=0,
        metric="mean_return",
        value=500.0,
        stderr=0.0,
        n=10,
        unit="return",
        extra={},
    )
    return Row(**{**base, **changes})


@pytest.fixture
def rendered(tmp_path):
    """The report and README rendered from the fixture records into ``tmp_path``."""
    records = tmp_path / "records"
    shutil.copytree(FIXTURES, records)
    readme = tmp_path / "README.md"
    readme.write_text(f"# project\n\n{report.START}\nstale block\n{report.END}\n\nafter the block\n")
    out = tmp_path / "docs/results.md"
    args = ["--records", str(records), "--out", str(out), "--readme", str(readme)]
    assert report.main(args) == 0
    return args, out, readme


def test_report_renders_headlines_targets_and_every_suite(rendered):
    _, out, readme = rendered
    text = out.read_text()
    for suite in ("ddqn", "sdn", "speed"):
        assert f"## Suite `{suite}`" in text
    # the DDQN headline: two training seeds of 100 episodes each, not flagged as thin
    assert "| DDQN | CartPole-v1 | return, final model | 500.0 ± 0.0 (n=200, 2 seeds) |" in text
    # the SDN Pong headline rests on 5 episodes of one training run: flagged
    assert "19.6 ± 0.2 (n=5, 1 seed; thin)" in text
    # like-for-like latency decides the target; the user-facing path is reported beside it
    lines = {line.split(" | ")[1]: line for line in text.splitlines() if line.startswith("| #")}
    assert "**NOT met**" in lines["student latency ≥ 5× lower, like for like: forward() vs forward()"]
    assert "reported" in next(v for k, v in lines.items() if k.startswith("… what a user calling model.predict"))
    assert "| met |" in lines["CVTC 80→800→2 fwd+bwd within 3× of the MLP on CPU (CPU time)"]
    assert "| not run |" in lines["main command (whole pipeline, CartPole-v1) under 10 minutes on the 2-core CPU"]
    # the README keeps what is outside the markers and gets the compact table with links into the report
    block = readme.read_text()
    assert block.startswith("# project\n") and block.endswith("after the block\n") and "stale block" not in block
    assert "| method | env | metric | ours | paper | link |" in block
    assert "(docs/results.md#ddqn-cartpole)" in block
    # every command and commit of the records is named under its table
    assert "commit 0123456789ab" in text


def test_check_detects_stale_files(rendered, capsys):
    args, out, _ = rendered
    assert report.main([*args, "--check"]) == 0
    out.write_text(out.read_text() + "hand edit\n")
    assert report.main([*args, "--check"]) == 1
    assert "stale" in capsys.readouterr().out


def test_rerun_rows_replace_older_ones(tmp_path):
    first = _row(value=100.0)
    second = _row(value=200.0)
    assert [r.value for r in report.latest([first, second])] == [200.0]


def test_row_validation_names_the_wrong_field():
    with pytest.raises(ValueError, match="finite"):
        _row(value=math.nan)
    with pytest.raises(ValueError, match=r"Row\.unit"):
        _row(unit="furlongs")
    with pytest.raises(ValueError, match=r"Row\.method"):
        _row(method="")
    with pytest.raises(TypeError, match=r"Row\.seed"):
        _row(seed=1.5)
    with pytest.raises(ValueError, match=r"Row\.n"):
        _row(n=0)
    with pytest.raises(ValueError, match=r"Row\.setting"):
        _row(setting={"x": math.inf})


def test_append_and_load_round_trip_with_provenance(tmp_path):
    path = append_rows("demo", [_row(), _row(seed=1, value=498.0)], directory=tmp_path)
    assert path == tmp_path / "demo.jsonl"
    rows = load_rows("demo", directory=tmp_path)
    assert [r.value for r in rows] == [500.0, 498.0]
    assert {"commit", "machine", "command", "time"} <= set(rows[0].extra["run"])
    with pytest.raises(ValueError, match="suite"):
        append_rows("other", [_row()], directory=tmp_path)
    with pytest.raises(FileNotFoundError, match="known suites"):
        load_rows("missing", directory=tmp_path)


def test_a_bad_line_is_reported_with_file_and_line(tmp_path):
    good = _row().to_json()
    bad = json.loads(good)
    bad["value"] = "fast"
    (tmp_path / "demo.jsonl").write_text(good + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match=r"demo.jsonl:2"):
        load_rows(directory=tmp_path)


def test_script_results_become_rows():
    """A script's result dict (the DDQN script's layout) becomes validated rows of its suite."""
    record = {
        "command": "python benchmarks/bench_ddqn_cartpole.py --seeds 0",
        "machine": "test machine",
        "rows": [{"seed": 0, "model": "last", "mean_reward": 480.0, "std_reward": 20.0, "episodes": 100}],
    }
    suite, rows = rows_from_record("ddqn_cartpole", record)
    assert suite == "ddqn" and len(rows) == 1
    row = rows[0]
    assert row.setting["checkpoint"] == "final" and row.n == 100 and row.training_seeds == 1
    assert row.stderr == pytest.approx(20.0 / math.sqrt(99))
    assert row.extra["run"]["command"] == record["command"]
