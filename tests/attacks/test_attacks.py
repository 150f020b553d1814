"""Each attack departs from honest behaviour the way it claims."""

from __future__ import annotations

import pytest
import torch

from byzsgd import attacks
from byzsgd.attacks.base import AttackView
from byzsgd.attacks.workers import alie_strength


def view(
    messages,
    *,
    receivers=4,
    byzantine=2,
    positions=None,
    step=0,
    channel="worker_to_server",
):
    return AttackView(
        step=step,
        channel=channel,
        correct_messages=messages,
        num_byzantine=byzantine,
        num_receivers=receivers,
        receiver_positions=positions,
        subsets=None,
        rule="median",
        f=byzantine,
        generator=torch.Generator().manual_seed(0),
    )


def test_alie_strength_follows_the_formula_and_guards_its_domain() -> None:
    # n = 10, f = 3: s = floor(6) - 3 = 3, z = Phi^-1(7 / 10) ≈ 0.5244.
    assert abs(alie_strength(10, 3) - 0.5244) < 1e-3
    assert alie_strength(2, 0) == 1.0  # fraction (2 - 2) / 2 = 0 is outside (0, 1)


def test_alie_sends_mean_minus_z_std_to_everyone() -> None:
    grads = torch.randn(7, 5)
    out = attacks.make("alie", "worker_to_server", {"z": 1.5})(view(grads))
    expected = grads.mean(0) - 1.5 * grads.std(0)
    assert out.shape == (2, 4, 5)
    assert torch.allclose(out, expected.expand(2, 4, 5))


def test_polarise_pushes_halves_in_opposite_directions() -> None:
    grads = torch.randn(7, 50)
    out = attacks.make("polarise", "worker_to_server", {"scale": 2.0})(view(grads))
    push = out[0] - grads.mean(0)
    spread = (grads - grads.mean(0)).norm(dim=1).mean()
    assert torch.allclose(push.norm(dim=1), 2.0 * spread.expand(4), rtol=1e-4)
    assert torch.allclose(push[0], -push[3], atol=1e-5)
    assert torch.allclose(push[0], push[1])


def test_split_pulls_each_server_to_its_own_side() -> None:
    params = torch.randn(4, 30)
    out = attacks.make("split", "server_to_server")(
        view(params, byzantine=1, positions=params, channel="server_to_server")
    )
    centre = params.mean(0)
    assert torch.equal(torch.sign(out[0] - centre), torch.sign(params - centre))


def test_crash_is_silent_from_its_step() -> None:
    crash = attacks.make("crash", "server_to_worker", {"at_step": 3})
    params = torch.randn(4, 3)
    assert crash(view(params, step=2, channel="server_to_worker")) is not None
    assert crash(view(params, step=3, channel="server_to_worker")) is None


def test_sign_flip_reverses_the_mean() -> None:
    grads = torch.randn(5, 3)
    out = attacks.make("sign_flip", "worker_to_server", {"scale": 3.0})(view(grads))
    assert torch.allclose(out[1, 2], -3.0 * grads.mean(0))


def test_make_refuses_wrong_channel_and_unknown_options() -> None:
    with pytest.raises(
        ValueError, match="attack 'alie' does not apply to channel server_to_worker"
    ):
        attacks.make("alie", "server_to_worker")
    with pytest.raises(
        ValueError,
        match="attack 'polarise' has no option 'strength'; its options: scale",
    ):
        attacks.make("polarise", "worker_to_server", {"strength": 1})
    with pytest.raises(
        ValueError, match="unknown attack 'x'; expected one of: alie, crash"
    ):
        attacks.get("x")


def test_custom_attack_in_a_few_lines() -> None:
    @attacks.register
    class Zero(attacks.Attack):
        name = "zero_test"

        def messages(self, view):
            return view.broadcast(torch.zeros(view.dim))

    out = attacks.make("zero_test", "worker_to_server")(view(torch.randn(3, 2)))
    assert torch.equal(out, torch.zeros(2, 4, 2))
    assert "zero_test" in attacks.names("server_to_server")
