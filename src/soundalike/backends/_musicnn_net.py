"""musicnn and its VGG baseline in PyTorch, loadable from the original TensorFlow checkpoints.

A port of ``musicnn/models.py`` (Pons & Serra, musicnn 0.1.0, ISC licence), written anew from
the graph it builds; it imports torch at module level, so only :mod:`.musicnn` imports it, lazily.

Layout notes (what must match TensorFlow for the real weights to give the same numbers):

* inputs are log-mel patches ``(batch, 187 frames, 96 bands)``; torch works in NCHW with
  H = time, W = mel band, so TF kernels ``(h, w, in, out)`` become ``(out, in, h, w)``;
* ``tf.layers.conv2d(..., activation=relu)`` applies ReLU *before* the batch norm that follows;
* every batch norm is TF's, ``epsilon = 1e-3`` (read from the graph's FusedBatchNorm attrs);
* TF "same" padding puts the odd extra row at the end (kernel 128: 63 before, 64 after);
* the back end concatenates max- and mean-pooled maps on a new last axis and flattens, so the
  1506-d dense input interleaves them: ``[max_0, mean_0, max_1, mean_1, ...]``;
* the VGG flattens ``pool5`` in NHWC order before its dense layer.

Outputs are float64 tensors for the layers after the (float32) front end (see ``TAIL_DTYPE``);
callers cast them to float32.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._musicnn_tf_names import tf_mapping

__all__ = [
    "MusicnnNet",
    "VggNet",
    "build_net",
    "load_tf_weights",
    "randomize_",
    "log_mel",
    "SR",
    "N_FFT",
    "HOP",
    "N_MELS",
    "PATCH_FRAMES",
]

SR = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
#: librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1, as upstream computes it
PATCH_FRAMES = 187
BN_EPS = 1e-3
#: The cheap late layers (musicnn's mid and back end, ~4 % of its FLOPs; the VGG's last two conv
#: blocks and output) run in float64. oneDNN picks other float32 kernels for other batch sizes
#: there, so a clip's float32 result would depend on what it is batched with (~1e-6 relative);
#: in float64 the results round to the same float32 values whatever the batch.
TAIL_DTYPE = torch.float64


def log_mel(audio: np.ndarray) -> np.ndarray:
    """musicnn's input representation, computed in float32.

    Parameters
    ----------
    audio : np.ndarray [shape=(n_clips, n_samples), dtype=float32]   16 kHz mono

    Returns
    -------
    np.ndarray [shape=(n_clips, n_frames, 96), dtype=float32]
        ``log10(10000 * mel + 1)`` with ``n_frames = 1 + n_samples // 256``.

    Notes
    -----
    Upstream casts the power mel spectrogram to float16 before the log; loud bins above 65504
    then become ``inf``. The cast is left out here (float32 throughout), and the golden
    reference was made the same way.
    """
    import librosa

    mel = librosa.feature.melspectrogram(y=audio, sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
    mel = np.swapaxes(mel, -1, -2).astype(np.float32, copy=False)
    return np.log10(np.float32(10000) * mel + np.float32(1))


def _bn(n: int, dims: int) -> nn.Module:
    return (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(n, eps=BN_EPS)


class MusicnnNet(nn.Module):
    """musicnn: timbral + temporal front end, dense-residual mid end, global-pool back end.

    ``forward`` takes ``(batch, n_frames, n_mels)`` log-mel patches and returns a dict of
    ``logits`` ``(batch, n_classes)``, ``penultimate`` ``(batch, n_units)`` (the batch-normed
    dense layer upstream calls ``penultimate``), ``mean_pool`` and ``max_pool``
    ``(batch, 561 + 3 * n_filt_midend)``.
    """

    def __init__(
        self,
        *,
        n_classes: int = 50,
        n_mels: int = N_MELS,
        num_filt: float = 1.6,
        n_filt_midend: int = 64,
        n_units: int = 200,
    ) -> None:
        super().__init__()
        n_timbral = int(num_filt * 128)
        n_temporal = int(num_filt * 32)
        self.in_bn = _bn(1, 2)
        # timbral: (7 x 40% of the bands) and (7 x 70%), "valid" after padding 3 frames each side
        self.timbral = nn.ModuleList(
            [nn.Conv2d(1, n_timbral, (7, int(f * n_mels))) for f in (0.4, 0.7)]
        )
        self.timbral_bn = nn.ModuleList([_bn(n_timbral, 2) for _ in range(2)])
        # temporal: (128|64|32 x 1) with TF "same" padding
        self.temporal_k = (128, 64, 32)
        self.temporal = nn.ModuleList([nn.Conv2d(1, n_temporal, (k, 1)) for k in self.temporal_k])
        self.temporal_bn = nn.ModuleList([_bn(n_temporal, 2) for _ in self.temporal_k])
        n_front = 2 * n_timbral + 3 * n_temporal
        # mid end: TF convolves (7 x all channels) on a 1-channel image = Conv1d over channels
        self.mid = nn.ModuleList(
            [nn.Conv1d(n_front, n_filt_midend, 7), nn.Conv1d(n_filt_midend, n_filt_midend, 7), nn.Conv1d(n_filt_midend, n_filt_midend, 7)]
        )
        self.mid_bn = nn.ModuleList([_bn(n_filt_midend, 1) for _ in range(3)])
        self.n_pooled = n_front + 3 * n_filt_midend
        self.pool_bn = _bn(2 * self.n_pooled, 1)
        self.dense = nn.Linear(2 * self.n_pooled, n_units)
        self.dense_bn = _bn(n_units, 1)
        self.out = nn.Linear(n_units, n_classes)
        for m in (self.mid, self.mid_bn, self.pool_bn, self.dense, self.dense_bn, self.out):
            m.to(TAIL_DTYPE)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.in_bn(x.unsqueeze(1))  # (B, 1, T, F)
        feats = []
        padded = F.pad(x, (0, 0, 3, 3))
        for conv, bn in zip(self.timbral, self.timbral_bn):
            feats.append(_relu_bn_max_over_bands(conv(padded), bn))  # (B, C, T)
        for k, conv, bn in zip(self.temporal_k, self.temporal, self.temporal_bn):
            before = (k - 1) // 2  # TF "same": the extra row of padding goes at the end
            y = conv(F.pad(x, (0, 0, before, k - 1 - before)))
            feats.append(_relu_bn_max_over_bands(y, bn))
        front = torch.cat(feats, dim=1).to(TAIL_DTYPE)  # (B, 561, T)
        return self.tail(front)

    def tail(self, front: torch.Tensor, first_mid: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Mid and back end: ``(B, 561, T)`` front-end features (TAIL_DTYPE) -> the outputs.

        `first_mid`, when given, is the first mid-end convolution of `front` computed by the
        caller (the factorised runtime does it in float32)."""
        y = self.mid[0](F.pad(front, (3, 3))) if first_mid is None else first_mid
        m1 = self.mid_bn[0](F.relu(y))
        m2 = self.mid_bn[1](F.relu(self.mid[1](F.pad(m1, (3, 3))))) + m1
        m3 = self.mid_bn[2](F.relu(self.mid[2](F.pad(m2, (3, 3))))) + m2
        mid = torch.cat([front, m1, m2, m3], dim=1)  # (B, 753, T)

        max_pool = mid.amax(dim=2)
        mean_pool = mid.mean(dim=2)
        flat = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # interleaved, as TF flattens
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(flat))))
        logits = self.out(penultimate)
        return {"logits": logits, "penultimate": penultimate, "mean_pool": mean_pool, "max_pool": max_pool}

    def tf_mapping(self) -> dict[str, tuple[str, str]]:
        """torch parameter name -> (TF variable, layout) for :func:`load_tf_weights`."""
        return tf_mapping("musicnn")


class VggNet(nn.Module):
    """The VGG-like baseline shipped with musicnn: five 3x3 conv blocks, dense output.

    ``forward`` returns ``logits`` ``(batch, n_classes)`` and ``penultimate``, the flattened
    ``pool5`` that feeds the output layer (``(batch, 256)`` for 187 x 96 input).
    """

    _TAIL_FROM = 3  # conv blocks 4 and 5 (small maps) run in TAIL_DTYPE
    _POOLS = ((4, 1), (2, 2), (2, 2), (2, 2), (4, 4))
    _STRIDES = ((2, 2), (2, 2), (2, 2), (2, 2), (4, 4))

    def __init__(self, *, n_classes: int = 50, n_filters: int = 128, n_frames: int = PATCH_FRAMES, n_mels: int = N_MELS) -> None:
        super().__init__()
        self.in_bn = _bn(1, 2)
        self.convs = nn.ModuleList(
            [nn.Conv2d(1 if i == 0 else n_filters, n_filters, 3, padding=1) for i in range(5)]
        )
        self.bns = nn.ModuleList([_bn(n_filters, 2) for _ in range(5)])
        t, f = n_frames, n_mels
        for (pt, pf), (st, sf) in zip(self._POOLS, self._STRIDES):
            t, f = (t - pt) // st + 1, (f - pf) // sf + 1
        self.n_penultimate = t * f * n_filters
        self.out = nn.Linear(self.n_penultimate, n_classes)
        for i in range(self._TAIL_FROM, 5):
            self.convs[i].to(TAIL_DTYPE)
            self.bns[i].to(TAIL_DTYPE)
        self.out.to(TAIL_DTYPE)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.in_bn(x.unsqueeze(1))
        for i, (conv, bn, pool, stride) in enumerate(zip(self.convs, self.bns, self._POOLS, self._STRIDES)):
            if i == self._TAIL_FROM:
                x = x.to(TAIL_DTYPE)
            x = F.max_pool2d(bn(F.relu(conv(x))), pool, stride)
        flat = x.permute(0, 2, 3, 1).flatten(1)  # NHWC order, as tf.layers.flatten sees it
        return {"logits": self.out(flat), "penultimate": flat}

    def tf_mapping(self) -> dict[str, tuple[str, str]]:
        return tf_mapping("vgg")


def _relu_bn_max_over_bands(y: torch.Tensor, bn: nn.Module) -> torch.Tensor:
    """``max_f BN(relu(y))`` for ``y`` of shape (B, C, T, F), without passes over the full map.

    ReLU and the per-channel affine map of an eval-mode batch norm are monotone (the affine map
    decreasing where ``gamma < 0``), and so is float rounding, so the max over bands commutes
    with them: take the max (or the min, for channels with a negative scale) over bands first,
    then apply ReLU and the batch norm to the (B, C, T) result. Same values as the direct order.
    """
    low, high = torch.aminmax(y, dim=3)
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    picked = torch.where((scale >= 0)[None, :, None], high, low)
    return F.batch_norm(F.relu(picked), bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def _to_torch_layout(value: np.ndarray, layout: str) -> np.ndarray:
    if layout == "conv2d":  # (h, w, in, out) -> (out, in, h, w)
        return value.transpose(3, 2, 0, 1)
    if layout == "conv1d":  # (7, C, 1, out): the C axis is the conv1d channel axis -> (out, C, 7)
        return value[:, :, 0, :].transpose(2, 1, 0)
    if layout == "dense":  # (in, out) -> (out, in)
        return value.T
    return value


def build_net(arch: str, *, n_classes: int = 50) -> nn.Module:
    """An untrained network of `arch` (``"musicnn"`` or ``"vgg"``) in eval mode."""
    net = MusicnnNet(n_classes=n_classes) if arch == "musicnn" else VggNet(n_classes=n_classes)
    return net.eval()


def load_tf_weights(net: nn.Module, variables: dict[str, np.ndarray]) -> list[str]:
    """Copy TF variables into `net` in place; return the problems found (empty = exact match).

    Every parameter and running statistic must come from the checkpoint with the expected
    shape, and every checkpoint variable must be used.
    """
    problems: list[str] = []
    state = net.state_dict()
    mapping = net.tf_mapping()
    used = set()
    new_state = {}
    for name, tensor in state.items():
        if name.endswith("num_batches_tracked"):
            new_state[name] = tensor
            continue
        if name not in mapping:
            problems.append(f"no TF variable mapped to {name}")
            continue
        tf_name, layout = mapping[name]
        if tf_name not in variables:
            problems.append(f"missing variable {tf_name}")
            continue
        value = _to_torch_layout(variables[tf_name], layout)
        used.add(tf_name)
        if tuple(value.shape) != tuple(tensor.shape):
            problems.append(f"{tf_name} has shape {variables[tf_name].shape}, expected {tuple(tensor.shape)} after layout change")
            continue
        new_state[name] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    unused = sorted(set(variables) - used)
    if unused:
        problems.append(f"unexpected variables {unused}")
    if not problems:
        net.load_state_dict(new_state, strict=True)
    return problems


@torch.no_grad()
def randomize_(net: nn.Module, *, seed: int = 0) -> nn.Module:
    """Fill `net` with seeded random weights and plausible batch-norm statistics (tests)."""
    gen = torch.Generator().manual_seed(seed)
    for name, t in net.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        if name.endswith("running_var"):
            t.copy_(0.5 + torch.rand(t.shape, generator=gen))
        elif name.endswith("running_mean") or name.endswith("bias"):
            t.copy_(0.1 * torch.randn(t.shape, generator=gen))
        elif t.ndim == 1:  # batch-norm gamma
            t.copy_(1.0 + 0.1 * torch.randn(t.shape, generator=gen))
        else:
            fan_in = int(np.prod(t.shape[1:]))
            t.copy_(torch.randn(t.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
    return net
