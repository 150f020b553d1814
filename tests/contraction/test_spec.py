"""Study files: grids, expressions, and bad input refused before any work."""

from __future__ import annotations

import pytest

from byzsgd.config import ConfigError
from byzsgd.contraction.spec import evaluate, load


def study(**axes) -> dict:
    return {"study": [{"name": "s", **axes}]}


def test_default_study_loads_and_every_cell_can_run() -> None:
    studies = load()
    names = [s.name for s in studies]
    assert names == [
        "mixing",
        "mixing_attacked",
        "rules",
        "norms",
        "expansion",
        "agreement",
        "camps",
    ]
    cells = [cell for s in studies for cell in s.cells()]
    assert len(cells) == 91
    assert {cell.status for cell in cells} == {"ok"}


def test_grid_is_the_product_of_the_lists() -> None:
    (s,) = load(study(correct=[4, 6], lam=[0.5, 1.0], rule=["median", "krum"]))
    assert s.varying() == ["correct", "rule", "lam"]
    assert len(s.cells()) == 8


def test_quorum_expression_and_policy_all() -> None:
    (s,) = load(study(correct=10, f=3, quorum=["n-f", "2*f+1"], adversary="split"))
    assert [cell.q for cell in s.cells()] == [10, 7]
    (s,) = load(study(correct=10, f=3, policy="all", adversary="split"))
    assert s.cells()[0].q == 13
    (s,) = load(study(correct=10, f=3, policy="all", adversary="crash"))
    assert s.cells()[0].q == 10  # the crashed servers never reply


def test_cells_that_cannot_run_say_why() -> None:
    (s,) = load(
        study(
            correct=4,
            f=2,
            quorum=["n", "c+1", "1"],
            adversary=["crash", "split"],
            rule="median",
        )
    )
    status = {(c.quorum, c.adversary): c.status for c in s.cells()}
    assert status[("n", "crash")] == "quorum 6 not in [1, 4] live servers"
    assert status[("c+1", "split")] == "ok"
    assert status[("1", "split")] == "median needs m >= 2f + 1"
    (s,) = load(study(correct=5, dim=3, init="unit_vectors"))
    assert s.cells()[0].status == "unit vectors need dim >= 5"


@pytest.mark.parametrize(
    "axes,message",
    [
        ({"rule": "medain"}, r"rule = 'medain': unknown rule; expected one of"),
        ({"lam": 1.5}, r"lam = 1.5: expected a number in \[0, 1\]"),
        ({"norm": 3}, r"norm = 3: expected one of 1, 2, inf"),
        ({"adversary": "evil"}, r"adversary = 'evil': expected one of: none, crash"),
        ({"policy": "fastest"}, r"policy = 'fastest': expected one of"),
        ({"init": "ring"}, r"init = 'ring': expected one of"),
        ({"correct": 1}, r"correct = 1: expected an integer >= 2"),
        ({"correct": 10**6}, r"correct = 1000000: expected at most 200"),
        ({"f": -1}, r"f = -1: expected an integer >= 0"),
        ({"dim": 2.5}, r"dim = 2.5: expected an integer >= 1"),
        ({"quorum": "n-g"}, r"quorum 'n-g' is not a number or an expression of c"),
        ({"quorum": "__import__('os')"}, r"is not a number or an expression"),
        ({"bound": "1 - lam/0"}, r"bound '1 - lam/0' divides by zero"),
        ({"bound": "1/(c-4)", "correct": [6, 4]}, r"cell correct=4.*divides by zero"),
        ({"quorum": "1e308*10"}, r"quorum '1e308\*10' is not finite"),
        ({"quorum": "-" * 3000 + "1"}, r"is not a number or an expression"),
        ({"lam": 10**400}, r"expected a number in \[0, 1\]"),
        ({"shrink": 10**400}, r"expected a finite number > 1"),
        ({"rounds_cap": 10**12}, r"rounds_cap = 1000000000000: expected at most"),
        ({"margin": -1}, r"margin = -1: expected a number in \[0, 1e6\]"),
        ({"reps": 1}, r"reps = 1: expected an integer >= 2"),
        ({"shrink": 0.5}, r"shrink = 0.5: expected a finite number > 1"),
        ({"correct": []}, r"correct is an empty list"),
        ({"colour": "red"}, r"unknown key 'colour'; expected one of: correct"),
    ],
)
def test_bad_values_name_the_key_and_what_was_expected(axes, message) -> None:
    with pytest.raises(ConfigError, match=message):
        load(study(**axes))


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/x", "a/b", ".hidden", None, 3])
def test_study_names_cannot_leave_the_output_folder(name) -> None:
    with pytest.raises(ConfigError, match=r"name = .*: expected letters, digits"):
        load({"study": [{"name": name}]})


def test_expressions_are_checked_with_each_cells_values() -> None:
    (s,) = load(study(correct=10, f=3, quorum="c + 9/f", bound="1/(f-1)"))
    (cell,) = s.cells()
    assert cell.q == 13 and cell.bound_value == 0.5


def test_cells_too_large_for_memory_are_not_run() -> None:
    (s,) = load(study(correct=40, f=10, dim=2000, reps=2000, adversary="worst_case"))
    (cell,) = s.cells()
    assert cell.status.startswith("needs about ")
    assert cell.status.endswith("GiB at once (limit 4 GiB): lower reps or dim")


def test_overrides_and_only() -> None:
    studies = load(None, {"reps": 7, "lam": [0.5]}, ["mixing", "rules"])
    assert [s.name for s in studies] == ["mixing", "rules"]
    assert all(s.settings["reps"] == 7 and s.axes["lam"] == [0.5] for s in studies)
    with pytest.raises(ConfigError, match="no study named 'nope'; studies: mixing"):
        load(None, only=["nope"])
    with pytest.raises(ConfigError, match="--set: unknown key 'reps_'"):
        load(None, {"reps_": 3})
    # an override is checked only against the studies asked for
    (rules,) = load(None, {"quorum": "n-f-1"}, ["rules"])
    assert rules.cells()[0].q == 9


def test_study_file_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="is not a file"):
        load(tmp_path)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=r"binary\.toml.*utf-8"):
        load(binary)
    broken = tmp_path / "broken.toml"
    broken.write_text("[[study]\n")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load(broken)
    twice = tmp_path / "twice.toml"
    twice.write_text('[[study]]\nname = "a"\n[[study]]\nname = "a"\n')
    with pytest.raises(ConfigError, match="study name 'a' is used twice"):
        load(twice)


def test_expressions() -> None:
    variables = {"n": 13, "c": 10, "f": 3, "q": 10, "lam": 0.5}
    assert evaluate("n-f", variables, "quorum") == 10
    assert evaluate("2*f+1", variables, "quorum") == 7
    assert evaluate("(c+1)//2", variables, "quorum") == 5
    assert evaluate("1 - lam/2", variables, "bound") == 0.75
    assert evaluate("-f + 4", variables, "quorum") == 1
    with pytest.raises(ConfigError, match="is not a number"):
        evaluate("f ** 2", variables, "quorum")
