"""The VGGish network in torch (imported lazily by :mod:`soundalike.backends.vggish`).

Same module layout as the torchvggish port, so its published state dict loads strictly:
``features.{0,3,6,8,11,13}`` are the 3x3 convolutions and ``embeddings.{0,2,4}`` the fully
connected layers 12288-4096-4096-128.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from ..errors import WeightsError

log = logging.getLogger(__name__)

#: VGG configuration "A" without the fifth block: channels, "M" = 2x2 max pool
FULL_LAYOUT: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")
FULL_FC = 4096
#: a narrow copy of the same layout for fast tests (same module indices)
TINY_LAYOUT: tuple[int | str, ...] = (8, "M", 16, "M", 32, 32, "M", 64, 64, "M")
TINY_FC = 64
EMBEDDING_SIZE = 128


class VGGishNet(nn.Module):
    """VGGish: (n_examples, 1, 96, 64) log-mel patches -> (n_examples, 128).

    Parameters
    ----------
    layout : tuple
        Channel counts and ``"M"`` pools of the convolutional stack.
    fc : int
        Width of the two hidden fully connected layers.
    final_relu : bool
        Apply a ReLU to the 128-d output. Google's model has none ("the embedding value is
        pre-activation", vggish/README.md); the torchvggish port adds one.
    """

    def __init__(self, layout: tuple[int | str, ...] = FULL_LAYOUT, fc: int = FULL_FC, *, final_relu: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for v in layout:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(c_in, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                c_in = int(v)
        self.features = nn.Sequential(*layers)
        # 96x64 input after four 2x2 pools -> 6x4 positions
        self.embeddings = nn.Sequential(
            nn.Linear(c_in * 6 * 4, fc),
            nn.ReLU(inplace=True),
            nn.Linear(fc, fc),
            nn.ReLU(inplace=True),
            nn.Linear(fc, EMBEDDING_SIZE),
            nn.ReLU(inplace=True) if final_relu else nn.Identity(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        # TF flattens NHWC: (n, C, H, W) -> (n, H, W, C) before flattening, as the port does
        x = x.permute(0, 2, 3, 1).contiguous()
        return self.embeddings(x.flatten(1))


def build(*, tiny: bool = False, final_relu: bool = False, seed: int = 0) -> VGGishNet:
    """A randomly initialised network (seeded, without touching the global RNG state)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if tiny:
            net = VGGishNet(TINY_LAYOUT, TINY_FC, final_relu=final_relu)
        else:
            net = VGGishNet(FULL_LAYOUT, FULL_FC, final_relu=final_relu)
    return net.eval()


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict safely (``weights_only=True``; safetensors when the name says so)."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused, truncated zip, ...
        raise WeightsError(
            f"Cannot read weights file {str(path)!r}: {exc}. Expected a torch state dict saved with "
            "torch.save (read with weights_only=True) or a .safetensors file."
        ) from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"Weights file {str(path)!r} does not hold a dict of tensors (a state dict).")
    return obj


def load_net(path: str | Path, *, final_relu: bool = False) -> VGGishNet:
    """The full-size network with the weights of a torchvggish state dict.

    Raises
    ------
    WeightsError
        Missing keys or wrong shapes (the message lists them); unknown extra keys are
        dropped with a log line.
    """
    state = load_state(path)
    net = VGGishNet(FULL_LAYOUT, FULL_FC, final_relu=final_relu)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise WeightsError(
            f"VGGish weights {str(path)!r} lack {len(missing)} tensors ({', '.join(missing[:6])}); "
            "expected the torchvggish state dict vggish-10086976.pth with keys "
            "features.{0,3,6,8,11,13}.* and embeddings.{0,2,4}.*."
        )
    extra = sorted(set(state) - set(expected))
    if extra:
        log.info("VGGish weights %s: ignoring %d unused tensors: %s", path, len(extra), ", ".join(extra))
    bad = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items() if state[k].shape != v.shape]
    if bad:
        raise WeightsError(f"VGGish weights {str(path)!r} have tensors of the wrong shape: {'; '.join(bad[:4])}.")
    net.load_state_dict({k: state[k].float() for k in expected}, strict=True)
    return net.eval()


def load_pca(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pca_eigen_vectors (128, 128), pca_means (128,))`` from the port's PCA file."""
    state = load_state(path)
    try:
        vectors = state["pca_eigen_vectors"].double()
        means = state["pca_means"].double().reshape(-1)
    except KeyError as exc:
        raise WeightsError(
            f"PCA parameters {str(path)!r} lack {exc.args[0]!r}; expected vggish_pca_params-970ea276.pth "
            "with 'pca_eigen_vectors' (128x128) and 'pca_means' (128)."
        ) from None
    if vectors.shape != (EMBEDDING_SIZE, EMBEDDING_SIZE) or means.shape != (EMBEDDING_SIZE,):
        raise WeightsError(
            f"PCA parameters {str(path)!r} have shapes {tuple(vectors.shape)} and {tuple(means.shape)}; "
            "expected (128, 128) and (128,)."
        )
    return vectors, means
