"""The documentation stays true to the code."""

from __future__ import annotations

from pathlib import Path

from byzsgd.cli import keys_markdown

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_config_reference_lists_every_key_as_generated() -> None:
    text = (DOCS / "config.md").read_text()
    assert keys_markdown() in text


def test_readme_quickstart_is_two_commands() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("```", 2)[1]
    commands = [line for line in quickstart.splitlines()[1:] if line.strip()]
    assert commands == ["make run", "make test"]


def python_blocks(name: str) -> list[str]:
    text = (DOCS / name).read_text()
    return [block.split("\n", 1)[1] for block in text.split("```python")[1:]]


def test_custom_attack_example_runs_as_written(tmp_path, monkeypatch) -> None:
    from byzsgd.attacks import base

    monkeypatch.setattr(base, "_ATTACKS", dict(base._ATTACKS))
    monkeypatch.chdir(tmp_path)
    (block,) = [b.split("```", 1)[0] for b in python_blocks("attacks.md")]
    namespace: dict = {}
    exec(compile(block, "docs/attacks.md", "exec"), namespace)
    summary = namespace["summary"]
    assert summary["steps"] == 20
    assert (tmp_path / "runs" / "custom-attack" / "summary.json").is_file()
    from byzsgd import attacks

    assert "scaled_mean" in attacks.names("worker_to_server")


def test_other_python_examples_run(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    readme = (DOCS.parent / "README.md").read_text()
    blocks = [
        b.split("\n", 1)[1].split("```", 1)[0] for b in readme.split("```python")[1:]
    ]
    blocks += [b.split("```", 1)[0] for b in python_blocks("aggregators.md")]
    assert len(blocks) == 2
    for block in blocks:
        exec(compile(block, "docs", "exec"), {})
