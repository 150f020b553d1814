"""Each attack departs from honest behaviour the way it claims."""

from __future__ import annotations

import pytest
import torch

from byzsgd import attacks
from byzsgd.attacks.base import AttackView
from byzsgd.attacks.servers import median_interval
from byzsgd.attacks.workers import alie_strength

CHANNELS = ["worker_to_server", "server_to_worker", "server_to_server"]


def view(
    messages,
    *,
    receivers=4,
    byzantine=2,
    positions=None,
    step=0,
    channel="worker_to_server",
    subsets=None,
    rule="median",
    quorum=0,
    oracle=None,
    seed=0,
):
    correct = tuple(range(byzantine, byzantine + messages.shape[0]))
    return AttackView(
        step=step,
        channel=channel,
        correct_messages=messages,
        num_byzantine=byzantine,
        num_receivers=receivers,
        receiver_positions=positions,
        subsets=subsets,
        rule=rule,
        f=byzantine,
        generator=torch.Generator().manual_seed(seed),
        correct_senders=correct,
        byzantine_senders=tuple(range(byzantine)),
        quorum=quorum or messages.shape[0] + byzantine,
        oracle=oracle,
    )


def every_attack():
    return [
        (name, ch)
        for name in attacks.names()
        for ch in CHANNELS
        if ch in attacks.get(name).channels
    ]


def spread_out(receivers=4, d=6, seed=1):
    gen = torch.Generator().manual_seed(seed)
    messages = torch.randn(5, d, generator=gen)
    positions = messages[:receivers] if receivers <= 5 else None
    return messages, positions


@pytest.mark.parametrize(("name", "channel"), every_attack())
def test_every_attack_gives_one_vector_per_sender_and_receiver(name, channel):
    messages, positions = spread_out()
    has_positions = channel != "server_to_worker"
    v = view(messages, channel=channel, positions=positions if has_positions else None)
    out = attacks.make(name, channel)(v)
    if name == "crash":
        assert out is None
        return
    assert out.shape == (2, 4, 6)
    if name != "nonfinite":
        assert torch.isfinite(out).all()
    again = attacks.make(name, channel)(
        v.__class__(**{**v.__dict__, "generator": torch.Generator().manual_seed(0)})
    )
    assert torch.equal(out.nan_to_num(), again.nan_to_num())


@pytest.mark.parametrize(
    ("name", "channel"),
    [(n, c) for n, c in every_attack() if attacks.get(n).equivocates],
)
def test_equivocating_attacks_send_different_vectors_to_different_receivers(
    name, channel
):
    gen = torch.Generator().manual_seed(0)
    messages = torch.randn(5, 6, generator=gen) + 0.5
    # One Byzantine sender (id 0); the receivers hear different correct subsets, so
    # even the defence-aware attacks find different best strengths (against Krum).
    subsets = torch.tensor(
        [[0, 1, 2, 3, 4], [0, 2, 3, 4, 5], [0, 1, 3, 4, 5], [0, 1, 2, 4, 5]]
    )
    positions = messages[:4] if channel != "server_to_worker" else None
    v = AttackView(
        step=0,
        channel=channel,
        correct_messages=messages,
        num_byzantine=1,
        num_receivers=4,
        receiver_positions=positions,
        subsets=subsets,
        rule="krum",
        f=1,
        generator=torch.Generator().manual_seed(0),
        correct_senders=(1, 2, 3, 4, 5),
        byzantine_senders=(0,),
        quorum=5,
    )
    out = attacks.make(name, channel)(v)
    assert any(not torch.allclose(out[0, 0], out[0, r]) for r in range(1, 4))


@pytest.mark.parametrize(
    ("name", "channel"),
    [
        (n, c)
        for n, c in every_attack()
        if not attacks.get(n).equivocates and n != "crash"
    ],
)
def test_other_attacks_send_each_receiver_the_same(name, channel):
    messages, positions = spread_out()
    out = attacks.make(name, channel)(
        view(messages, channel=channel, positions=positions)
    )
    assert torch.equal(out[:, 0].nan_to_num(), out[:, -1].nan_to_num())


def test_alie_strength_follows_the_formula_and_guards_its_domain() -> None:
    # n = 10, f = 3: s = floor(6) - 3 = 3, z = Phi^-1(7 / 10) ≈ 0.5244.
    assert abs(alie_strength(10, 3) - 0.5244) < 1e-3
    assert alie_strength(2, 0) == 1.0  # fraction (2 - 2) / 2 = 0 is outside (0, 1)


def test_alie_sends_mean_minus_z_std_to_everyone() -> None:
    grads = torch.randn(7, 5)
    out = attacks.make("alie", "worker_to_server", {"z": 1.5})(view(grads))
    expected = grads.mean(0) - 1.5 * grads.std(0)
    assert torch.allclose(out, expected.expand(2, 4, 5))


def test_sign_flip_ipm_reversed_and_mimic() -> None:
    grads = torch.randn(5, 3)
    mean = grads.mean(0)
    make = attacks.make
    assert torch.allclose(
        make("sign_flip", "worker_to_server")(view(grads))[1, 2], -mean
    )
    ipm = make("ipm", "worker_to_server", {"epsilon": 0.5})(view(grads))
    assert torch.allclose(ipm[0, 0], -0.5 * mean)
    rev = make("reversed", "server_to_worker", {"k": 4.0})(view(grads))
    assert torch.allclose(rev[0, 3], -4.0 * mean)
    mimic = make("mimic", "worker_to_server", {"target": 2})(view(grads))
    assert torch.equal(mimic[1, 1], grads[2])


def test_gaussian_and_random_add_fresh_noise() -> None:
    grads = torch.zeros(5, 400)
    g = attacks.make("gaussian", "worker_to_server", {"std": 2.0})(view(grads))
    assert abs(float(g[0, 0].std()) - 2.0) < 0.3
    assert not torch.equal(g[0, 0], g[1, 0])
    r = attacks.make("random", "server_to_server", {"std": 3.0})(view(grads))
    assert abs(float(r.std()) - 3.0) < 0.3


def test_nonfinite_sends_the_value_asked() -> None:
    grads = torch.randn(5, 3)
    for value in ("nan", "inf", "-inf"):
        out = attacks.make("nonfinite", "worker_to_server", {"value": value})(
            view(grads)
        )
        assert torch.equal(
            out.isnan(), torch.full_like(out, value == "nan", dtype=bool)
        )
    with pytest.raises(ValueError, match="nonfinite: value = 'zero' is not allowed"):
        attacks.make("nonfinite", "worker_to_server", {"value": "zero"})


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


def test_balancing_keeps_the_same_two_camps_every_round() -> None:
    attack = attacks.make("balancing", "server_to_server")
    rounds = [torch.randn(4, 20), torch.randn(4, 20)]
    sides = [
        torch.sign(attack(view(p, channel="server_to_server", step=t))[0] - p.mean(0))
        for t, p in enumerate(rounds)
    ]
    assert torch.equal(sides[0], sides[1])
    assert torch.equal(sides[0][0], -sides[0][3])
    assert torch.equal(sides[0][0], sides[0][1])


def test_stale_replays_old_parameters() -> None:
    attack = attacks.make("stale", "server_to_worker", {"lag": 2})
    history = [torch.full((3, 2), float(t)) for t in range(5)]
    sent = [
        attack(view(h, step=t, channel="server_to_worker"))[0, 0, 0]
        for t, h in enumerate(history)
    ]
    assert [float(s) for s in sent] == [0.0, 0.0, 0.0, 1.0, 2.0]


def test_crash_is_silent_from_its_step() -> None:
    crash = attacks.make("crash", "server_to_worker", {"at_step": 3})
    params = torch.randn(4, 3)
    assert crash(view(params, step=2, channel="server_to_worker")) is not None
    assert crash(view(params, step=3, channel="server_to_worker")) is None


def test_label_flip_uses_the_oracle_with_flipped_labels() -> None:
    calls = []

    def oracle(points, flip):
        calls.append((points.clone(), flip))
        return torch.ones(points.shape) * 7

    positions = torch.randn(4, 3)
    out = attacks.make("label_flip", "worker_to_server")(
        view(torch.randn(5, 3), positions=positions, oracle=oracle)
    )
    assert torch.equal(out, torch.full((2, 4, 3), 7.0))
    assert calls[0][1] is True
    assert torch.allclose(calls[0][0][0], positions.mean(0))


def test_median_interval_is_the_reachable_range() -> None:
    correct = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    low, high = median_interval(correct, 1)  # q = 5: median rank 2
    assert (float(low), float(high)) == (1.0, 2.0)
    low, high = median_interval(correct, 2)  # q = 6: ranks 2 and 3
    assert (float(low), float(high)) == (0.5, 2.5)
    for b in (1, 2):
        for value in (-1e9, 1e9):
            x = torch.cat([correct, torch.full((b, 1), value)])
            from byzsgd.aggregators import median

            got = float(median(x, f=b))
            assert float(median_interval(correct, b)[0]) <= got
            assert got <= float(median_interval(correct, b)[1])


def test_worst_case_median_pushes_a_pair_to_opposite_ends() -> None:
    from byzsgd.aggregators import median

    params = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    subsets = torch.tensor(
        [[0, 1, 2, 3, 4], [0, 2, 3, 4, 5], [0, 1, 3, 4, 5], [0, 1, 2, 4, 5]]
    )
    v = view(
        params,
        byzantine=1,
        positions=params,
        channel="server_to_server",
        subsets=subsets,
        quorum=5,
    )
    forged = attacks.make("worst_case_median", "server_to_server")(v)
    heard = v.heard_correct()
    medians = torch.stack(
        [median(torch.cat([h, forged[0, r : r + 1]]), f=1) for r, h in enumerate(heard)]
    )
    intervals = [median_interval(h, 1) for h in heard]
    best = max(
        float((hi_a - lo_b).abs().max())
        for lo_a, hi_a in intervals
        for lo_b, hi_b in intervals
    )
    achieved = float((medians[:, None] - medians[None]).abs().amax())
    assert achieved >= best - 1e-6


def test_adaptive_alie_hurts_its_receiver_at_least_as_much_as_fixed_alie() -> None:
    from byzsgd.aggregators import median

    gen = torch.Generator().manual_seed(3)
    grads = torch.randn(7, 20, generator=gen)
    v = view(grads, byzantine=3, quorum=10)
    adaptive = attacks.make("adaptive_alie", "worker_to_server")(v)
    fixed = attacks.make("alie", "worker_to_server")(v)
    target = grads.mean(0)

    def damage(out):
        inputs = torch.cat([grads, out[:, 0]])
        return float((median(inputs, f=3) - target).norm())

    assert damage(adaptive) >= damage(fixed) - 1e-6
    assert damage(adaptive) > 0.0


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
        ValueError, match="unknown attack 'x'; expected one of: adaptive"
    ):
        attacks.get("x")
