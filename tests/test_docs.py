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
