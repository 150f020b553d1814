"""Models whose parameters are one flat vector, so many copies train side by side.

A :class:`FlatModel` wraps an ``nn.Module`` built on the ``meta`` device (it holds
no storage and draws nothing from the global random generator). Its forward pass
takes the parameters as one flat ``float32`` vector of length :attr:`FlatModel.dim`,
cut into views and swapped in with :func:`torch.func.functional_call`, so that
``torch.func.vmap`` can run one model per worker or per server in a single call.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from byzsgd.config import ConfigError

logger = logging.getLogger(__name__)

MODELS = ("logistic", "mlp", "cnn")
LOSSES = ("cross_entropy", "half_squared_error")


class FlatModel:
    """A model evaluated at a flat parameter vector, safe under ``torch.func.vmap``.

    Parameters
    ----------
    module : nn.Module
        The architecture, preferably built on the ``meta`` device: only the names and
        shapes of its parameters are used, never their values.
    loss : str
        ``"cross_entropy"`` (mean over the batch, labels are class indices) or
        ``"half_squared_error"`` (``0.5 * mean((prediction - target) ** 2)``).

    Attributes
    ----------
    dim : int
        Number of parameters, the length of every flat vector.

    Examples
    --------
    >>> model = build_model("logistic", num_features=4, num_classes=3)
    >>> model.dim
    15
    >>> flat = model.init_params(torch.Generator().manual_seed(0))
    >>> model.logits(flat, torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """

    def __init__(self, module: nn.Module, *, loss: str) -> None:
        if loss not in LOSSES:
            raise ValueError(f"loss {loss!r} is not one of: {', '.join(LOSSES)}")
        if any(True for _ in module.buffers()):
            raise ValueError("FlatModel supports modules without buffers only")
        self.module = module
        self.loss_name = loss
        named = list(module.named_parameters())
        self._names = [name for name, _ in named]
        self._shapes = [tuple(param.shape) for _, param in named]
        self._sizes = [math.prod(shape) for shape in self._shapes]
        self._init_bounds = _default_init_bounds(module)
        self.dim = sum(self._sizes)

    def __repr__(self) -> str:
        module = type(self.module).__name__
        return f"FlatModel({module}, dim={self.dim}, loss={self.loss_name!r})"

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views of ``flat`` shaped like the module's parameters, keyed by name."""
        pieces = flat.split(self._sizes)
        return {
            name: piece.view(shape)
            for name, piece, shape in zip(
                self._names, pieces, self._shapes, strict=True
            )
        }

    def logits(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Outputs for the batch ``x`` (class scores, or predictions for regression)."""
        return functional_call(self.module, self.unflatten(flat), (x,))

    def loss(
        self, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        """Mean loss of the batch ``(x, y)`` at the parameters ``flat`` (a scalar)."""
        return self.losses(self.logits(flat, x), y).mean()

    def losses(self, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-sample loss of ``outputs`` (from :meth:`logits`) against ``y``."""
        if self.loss_name == "cross_entropy":
            picked = outputs.gather(-1, y.unsqueeze(-1)).squeeze(-1)
            return torch.logsumexp(outputs, dim=-1) - picked
        return 0.5 * (outputs - y) ** 2

    def init_params(self, generator: torch.Generator) -> torch.Tensor:
        """A flat vector drawn like PyTorch's default ``Linear``/``Conv2d`` init.

        Every weight and bias of a layer with fan-in ``k`` is uniform on
        ``[-1/sqrt(k), 1/sqrt(k)]`` (what ``reset_parameters`` gives), drawn from
        ``generator`` only, in the order of :attr:`dim`.
        """
        pieces = []
        for name, size in zip(self._names, self._sizes, strict=True):
            bound = self._init_bounds[name]
            draw = torch.rand(size, generator=generator, dtype=torch.float32)
            pieces.append((2.0 * draw - 1.0) * bound)
        return torch.cat(pieces)


class ImageCNN(nn.Module):
    """Two 3x3 convolutions (8 then 16 channels, each ReLU and 2x2 max-pool), linear.

    Takes flat square images ``(..., side * side)``; padding 1 keeps each
    convolution's size, so the linear layer sees ``16 * (side // 4) ** 2`` features.
    ReLU is applied after the pooling: the two commute (both are monotone), and
    pooling first makes ReLU four times cheaper.
    """

    def __init__(self, *, side: int, num_classes: int) -> None:
        super().__init__()
        self.side = side
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1)
        self.head = nn.Linear(16 * (side // 4) ** 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = x.reshape(-1, 1, self.side, self.side)
        hidden = F.relu(F.max_pool2d(self.conv1(images), 2))
        hidden = F.relu(F.max_pool2d(self.conv2(hidden), 2))
        return self.head(hidden.flatten(1)).reshape(*x.shape[:-1], -1)


class LinearRegression(nn.Module):
    """A linear map without bias whose output is one number per sample."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(num_features, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).squeeze(-1)


def build_model(
    name: str, *, num_features: int, num_classes: int, hidden_size: int = 64
) -> FlatModel:
    """The classifier ``name`` (``logistic``, ``mlp`` or ``cnn``) as a FlatModel.

    Raises
    ------
    ConfigError
        If ``name`` is not a known model, or the CNN gets non-square images.
    """
    builders: dict[str, Callable[[], nn.Module]] = {
        "logistic": lambda: nn.Linear(num_features, num_classes),
        "mlp": lambda: nn.Sequential(
            nn.Linear(num_features, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, num_classes),
        ),
        "cnn": lambda: ImageCNN(
            side=_image_side(num_features), num_classes=num_classes
        ),
    }
    if name not in builders:
        raise ConfigError(
            f"task.model = {name!r} is not allowed; expected one of:"
            f" {', '.join(MODELS)}"
        )
    if name == "mlp" and hidden_size < 1:
        raise ConfigError(
            f"task.hidden_size = {hidden_size!r} is not allowed; expected a value >= 1"
        )
    with torch.device("meta"):
        module = builders[name]()
    model = FlatModel(module, loss="cross_entropy")
    logger.debug("built model %s with %d parameters", name, model.dim)
    return model


def build_regression_model(num_features: int) -> FlatModel:
    """A bias-free linear model trained with half the squared error."""
    with torch.device("meta"):
        module = LinearRegression(num_features)
    return FlatModel(module, loss="half_squared_error")


def _image_side(num_features: int) -> int:
    side = math.isqrt(num_features)
    if side * side != num_features or side < 4:
        raise ConfigError(
            f"task.model = 'cnn' needs square images of side >= 4; got {num_features}"
            " features"
        )
    return side


def _default_init_bounds(module: nn.Module) -> dict[str, float]:
    """For each parameter name, the half-width of PyTorch's default uniform init."""
    bounds: dict[str, float] = {}
    for prefix, layer in module.named_modules():
        if not isinstance(layer, (nn.Linear, nn.Conv2d)):
            continue
        fan_in = math.prod(layer.weight.shape[1:])
        for local, _ in layer.named_parameters(recurse=False):
            bounds[f"{prefix}.{local}" if prefix else local] = 1.0 / math.sqrt(fan_in)
    missing = [name for name, _ in module.named_parameters() if name not in bounds]
    if missing:
        raise ValueError(f"no default init known for parameters: {', '.join(missing)}")
    return bounds
