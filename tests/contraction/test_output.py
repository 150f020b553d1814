"""What a study writes: tables, CSV, JSON, figures, and the command line."""

from __future__ import annotations

import csv
import json

import pytest

from byzsgd.cli import main
from byzsgd.contraction import run_study
from byzsgd.contraction.output import markdown, terminal_table, write_outputs

SMALL = {
    "reps": 20,
    "rounds_cap": 5,
    "study": [
        {
            "name": "small",
            "title": "a small grid",
            "correct": [4, 6],
            "f": 1,
            "quorum": ["n-f", "1"],
            "rule": "median",
            "adversary": ["split", "worst_case"],
            "init": "two_clusters",
        },
        {"name": "rules", "rule": ["median", "krum"], "adversary": ["fixed", "split"]},
    ],
}


@pytest.fixture(scope="module")
def result():
    return run_study(SMALL)


def test_rows_hold_every_statistic(result) -> None:
    assert len(result.rows) == 8 + 4
    ok = [row for row in result.rows if row["status"] == "ok"]
    assert len(ok) == 4 + 4
    for row in ok:
        assert row["ratio_low"] <= row["ratio_mean"] <= row["ratio_high"]
        assert 0 <= row["p_no_contraction_low"] <= row["p_no_contraction"]
        assert row["p_no_contraction"] <= row["p_no_contraction_high"] <= 1
        assert row["rounds_low"] <= row["rounds_median"] <= row["rounds_high"]
        assert row["bound"] == 0.5


def test_tables_show_varying_axes_and_skipped_cells(result) -> None:
    small = result.studies[0]
    text = terminal_table(result, small)
    assert text.splitlines()[1].split()[:3] == ["c", "q", "adversary"]
    assert "not run: median needs m >= 2f + 1" in text
    assert "VIOLATES" in text  # a two-camp split that does not move at all
    md = markdown(result)
    assert "### small: a small grid" in md and "### rules: rules" in md
    assert md.count("| median | fixed |") == 1


def test_files_are_written_and_never_silently_replaced(result, tmp_path) -> None:
    out = tmp_path / "study"
    written = write_outputs(result, out)
    names = sorted(p.name for p in written)
    assert names == sorted(
        ["results.csv", "results.json", "tables.md", "small.png", "rules.png"]
    )
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 and "ratio_mean" in rows[0]
    data = json.loads((out / "results.json").read_text())
    assert [s["name"] for s in data["studies"]] == ["small", "rules"]
    assert len(data["rows"]) == 12
    assert (out / "small.png").read_bytes()[:4] == b"\x89PNG"

    with pytest.raises(FileExistsError, match="already holds study results"):
        write_outputs(result, out)
    assert not [p for p in out.iterdir() if p.name.startswith(".writing-")]
    write_outputs(result, out, overwrite=True)
    (backup,) = [p for p in out.iterdir() if p.name.startswith("replaced-")]
    assert (backup / "results.json").read_text() == json.dumps(data, indent=1) + "\n"


def test_command_line(tmp_path, capsys) -> None:
    spec = tmp_path / "study.toml"
    spec.write_text(
        'reps = 10\nrounds_cap = 3\n[[study]]\nname = "cli"\n'
        'correct = [3, 5]\nf = 1\nadversary = "worst_case"\nnorm = [2, "inf"]\n'
    )
    out = tmp_path / "out"
    code = main(["contraction", str(spec), "--out", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.startswith("cli: cli (10 repetitions)")
    assert "4 cells in" in printed
    assert json.loads((out / "results.json").read_text())["rows"][0]["reps"] == 10

    code = main(["contraction", str(spec), "--out", str(out), "--no-progress"])
    assert code == 2
    assert "already holds study results" in capsys.readouterr().err

    code = main(
        ["contraction", str(spec), "--out", str(tmp_path / "o2"), "--set", "lam=2"]
    )
    assert code == 2
    assert "lam = 2: expected a number in [0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()

    code = main(
        [
            "contraction",
            "--only",
            "expansion",
            "--set",
            "reps=5",
            "--out",
            str(tmp_path / "o3"),
            "--no-progress",
        ]
    )
    assert code == 0
    assert "expansion: three correct servers" in capsys.readouterr().out


def test_docs_hold_the_default_study_as_generated(tmp_path, monkeypatch) -> None:
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs" / "contraction.md"
    text = docs.read_text()
    generated = markdown(run_study(only=["mixing", "expansion"]))
    for section in generated.split("### ")[1:]:
        assert "#### " + section.strip() in text

    monkeypatch.chdir(tmp_path)
    (block,) = [b.split("```", 1)[0] for b in text.split("```python")[1:]]
    namespace: dict = {}
    exec(compile(block, "docs/contraction.md", "exec"), namespace)
    rows = namespace["result"].rows
    assert [row["correct"] for row in rows] == [4, 6]
    assert [row["violates"] for row in rows] == [False, True]
