"""Byzantine servers: parameters sent to workers and to the other servers."""

from __future__ import annotations

import torch

from byzsgd.attacks.base import SERVER_CHANNELS, Attack, AttackView, halves, register


@register
class Split(Attack):
    """Per receiver and per coordinate, push away from the correct servers' centre.

    The centre c is the correct parameters' coordinate-wise mean and w their
    coordinate-wise range (at least ``floor``). A receiver with a position p (a server)
    gets c + scale * w * sign(p - c): every coordinate pulled to the side the receiver
    already leans to, which slows the contraction of the gather. A receiver without a
    position (a worker) gets c + scale * w * s_r * u, with u a fixed random sign
    pattern and s_r = +1 for the first half of the receivers and -1 for the others.
    """

    name = "split"
    channels = SERVER_CHANNELS
    equivocates = True

    def __init__(self, scale: float = 1.0, floor: float = 1e-3) -> None:
        self.scale = scale
        self.floor = floor
        self.pattern: torch.Tensor | None = None

    def messages(self, view: AttackView) -> torch.Tensor:
        params = view.correct_messages
        centre = params.mean(dim=0)
        width = (params.amax(dim=0) - params.amin(dim=0)).clamp_min(self.floor)
        if view.receiver_positions is not None:
            side = torch.sign(view.receiver_positions - centre)
        else:
            if self.pattern is None or self.pattern.shape[0] != view.dim:
                bits = torch.randint(0, 2, (view.dim,), generator=view.generator)
                self.pattern = bits.to(params.dtype) * 2 - 1
            side = halves(view.num_receivers) * self.pattern
        return view.per_receiver(centre + self.scale * width * side)
