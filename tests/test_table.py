"""Rows x columns of runs, summarised; finished cells are not run again."""

from __future__ import annotations

import json

import pytest

from byzsgd.cli import main
from byzsgd.config import ConfigError
from byzsgd.experiments.table import load_spec, run_table

SPEC = """
[base]
steps = 4
batch_size = 8
eval_every = 4
num_servers = 3
num_byzantine_servers = 0
num_workers = 7
num_byzantine_workers = 2
task = {{ name = "digits", model = "logistic" }}
server_to_worker = {{ policy = "all", attack = "none" }}
worker_to_server = {{ policy = "all" }}
server_to_server = {{ policy = "all", attack = "none" }}

[rows]
key = "worker_to_server.attack"
values = ["none", "{attack}"]

[columns]
key = "worker_to_server.rule"
values = ["mean", "median", "bulyan"]

[columns.extra.mean]
"worker_to_server.f" = 0
"""


def test_table_runs_each_cell_once_and_marks_refusals(tmp_path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(SPEC.format(attack="reversed"))
    spec = load_spec(path)
    seen = []
    table = run_table(spec, tmp_path / "out", jobs=1, progress=seen.append)
    assert len(seen) == 6
    values = table["values"]
    assert isinstance(values["none|median"], float)
    assert values["reversed|bulyan"].startswith("refused: worker_to_server.rule")
    text = (tmp_path / "out" / "table.md").read_text()
    assert "| reversed |" in text and "n/a" in text
    assert json.loads((tmp_path / "out" / "table.json").read_text())["rows"] == [
        "none",
        "reversed",
    ]
    again = []
    run_table(spec, tmp_path / "out", jobs=1, progress=again.append)
    assert len(again) == 2  # only the refused cells are tried again


def test_bad_table_files_are_refused(tmp_path, capsys) -> None:
    path = tmp_path / "t.toml"
    path.write_text(SPEC.format(attack="none").replace("worker_to_server.f", "bogus"))
    with pytest.raises(ConfigError, match="unknown config key 'bogus'"):
        load_spec(path)
    path.write_text("[rows]\nkey = 'steps'\n")
    assert main(["table", str(path), "--out", str(tmp_path / "o")]) == 2
    assert (
        "[rows] needs a key and a non-empty list of values" in capsys.readouterr().err
    )
