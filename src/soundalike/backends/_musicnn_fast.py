"""musicnn's front end computed through its exact low-rank factorisation (the default CPU path).

The trained musicnn front-end filters are linearly dependent: MSD_musicnn's 204 timbral
filters of 7x38 taps span only 22 dimensions, the 204 of 7x67 only 14, the 51 temporal filters
of 128 / 64 taps 3 / 7 (singular values beyond these are below 1e-7 of the largest, i.e. float32
rounding noise of the checkpoint). So each convolution ``W * x`` (``W`` of shape
``(C, taps)``, rank ``r``) equals ``U (V * x)``: ``r`` basis filters convolved with the input,
then a ``C x r`` matrix mixing them. That is the same function of the same weights, not an
approximation, and it costs ``r (taps + C)`` instead of ``C taps`` multiply-adds per output
position: about 6x fewer FLOPs for the whole front end (~2.7 -> ~0.45 GFLOP per 3 s patch).

Also here: the max over mel bands is taken once (``amax`` of sign-flipped channels instead of
``aminmax`` + ``where``; see :func:`_musicnn_net._relu_bn_max_over_bands` for why the max
commutes with ReLU and an eval-mode batch norm). The mid and back ends are the reference
modules themselves (float64, so results hardly depend on the batch), except the first mid-end
convolution, which runs in float32 here (6x faster than PyTorch's float64 convolution; the
results stay within CONTRACTS' fp32 equality tolerance of the reference).

Weights whose rank does not pay (random test weights) run the same code with the filters
unfactorised. Agreement with the reference graph is tested in ``tests/backends/test_musicnn.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ._musicnn_net import TAIL_DTYPE, MusicnnNet

__all__ = ["FactorisedMusicnn", "RANK_RTOL"]

#: singular values below this share of the largest are dropped (float32 noise of the weights)
RANK_RTOL = 1e-6
#: factorise only when it saves at least this share of the multiply-adds
_MIN_SAVING = 0.3


@dataclass
class _Conv:
    """One front-end convolution, as ``basis`` filters then a ``mix_t`` (None: direct)."""

    basis: torch.Tensor  # (r, 1, kh, kw) or the full (C, 1, kh, kw) filters when mix_t is None
    mix_t: torch.Tensor | None  # (C, r) mixing matrix (sign-flipped rows), or None: direct
    bias: torch.Tensor  # (C,) sign-flipped
    sign: torch.Tensor  # (C,) +1 / -1: the sign of the batch norm's scale
    bn: torch.nn.Module
    pad: tuple[int, int]  # frames of zero padding (before, after) along time

    @property
    def rank(self) -> int:
        return int(self.basis.shape[0])


def _factorise(conv: torch.nn.Conv2d, bn: torch.nn.Module, pad: tuple[int, int]) -> _Conv:
    w = conv.weight.detach()
    c_out = w.shape[0]
    taps = int(w[0].numel())
    scale = bn.weight.detach() * torch.rsqrt(bn.running_var.detach() + bn.eps)
    sign = torch.where(scale >= 0, 1.0, -1.0).to(w.dtype)
    bias = conv.bias.detach() * sign
    flat = w.reshape(c_out, taps).double() * sign.double()[:, None]
    u, s, vt = torch.linalg.svd(flat, full_matrices=False)
    rank = int((s > RANK_RTOL * s[0]).sum()) if s.numel() and s[0] > 0 else c_out
    if rank * (taps + c_out) > (1.0 - _MIN_SAVING) * c_out * taps:
        basis = flat.float().reshape(w.shape).contiguous()
        return _Conv(basis, None, bias.contiguous(), sign, bn, pad)
    basis = vt[:rank].float().reshape(rank, *w.shape[1:]).contiguous()
    mix_t = (u[:, :rank] * s[:rank]).float().contiguous()  # (C, r)
    return _Conv(basis, mix_t, bias.contiguous(), sign, bn, pad)


class FactorisedMusicnn(torch.nn.Module):
    """A :class:`MusicnnNet` evaluated through its factorised front end.

    Parameters
    ----------
    net : MusicnnNet
        The reference network with its weights loaded (shared, not copied).

    ``forward`` takes and returns what ``MusicnnNet.forward`` does.
    """

    def __init__(self, net: MusicnnNet) -> None:
        super().__init__()
        self.net = net
        convs: list[_Conv] = []
        for conv, bn in zip(net.timbral, net.timbral_bn):
            convs.append(_factorise(conv, bn, (3, 3)))
        for k, conv, bn in zip(net.temporal_k, net.temporal, net.temporal_bn):
            before = (k - 1) // 2  # TF "same": the extra row of padding goes at the end
            convs.append(_factorise(conv, bn, (before, k - 1 - before)))
        self.convs = convs
        # the first mid-end convolution (561 -> 64 channels, ~15 % of the work left) in float32
        self.mid0_weight = net.mid[0].weight.detach().float().contiguous()
        self.mid0_bias = net.mid[0].bias.detach().float().contiguous()

    @property
    def ranks(self) -> list[int]:
        """Basis filters per front-end convolution (the filter count where unfactorised)."""
        return [c.rank for c in self.convs]

    def _front(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, F) normalised input -> (B, 561, T) front-end features."""
        feats = []
        n, _, t, _ = x.shape
        for c in self.convs:
            padded = F.pad(x, (0, 0, *c.pad))
            kh, kw = c.basis.shape[2:]
            if c.mix_t is None and kw == 1:
                # a direct (taps x 1) filter bank: one matrix product over time windows is ~2x
                # faster than oneDNN's convolution for this shape
                win = padded[:, 0].unfold(1, kh, 1)  # (B, T, F, taps)
                top = _filter_max_over_bands(win, c.basis.reshape(-1, kh).T.contiguous())  # (B, T, C)
                # max over bands of the sign-flipped maps; the bias is constant over bands
                picked = ((top + c.bias) * c.sign).transpose(1, 2)  # max or min per channel, (B, C, T)
            else:
                y = F.conv2d(padded, c.basis)  # (B, r | C, T, F)
                top = _mix_max_over_bands(y, c.mix_t) if c.mix_t is not None else y.amax(dim=3)  # (B, C, T)
                picked = (top + c.bias[:, None]) * c.sign[:, None]
            bn = c.bn
            feats.append(F.batch_norm(F.relu(picked), bn.running_mean, bn.running_var, bn.weight, bn.bias,
                                      False, 0.0, bn.eps))
        return torch.cat(feats, dim=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        net = self.net
        front = self._front(net.in_bn(x.unsqueeze(1)))
        first = F.conv1d(F.pad(front, (3, 3)), self.mid0_weight, self.mid0_bias)
        return net.tail(front.to(TAIL_DTYPE), first.to(TAIL_DTYPE))


#: frames per block of the mix-then-max: the block's (C, frames x bands) product stays in cache
_MIX_BLOCK_FRAMES = 16


def _mix_max_over_bands(y: torch.Tensor, mix_t: torch.Tensor) -> torch.Tensor:
    """``amax over bands of (mix_t @ y)``, block by block: ``(B, r, T, F)`` basis maps and the
    ``(C, r)`` mixing matrix -> ``(B, C, T)``.

    The full ``(B, C, T, F)`` product (90 MB for ten 3 s patches) is never formed: written and
    read back whole it made the front end memory-bound (2.7x slower, measured). Each block is
    computed band-major, ``(frames x bands, C)``, so the max over bands runs along rows of
    contiguous channels (vectorised); channel-major it took as long as the product itself.
    The same products and maxima, so the same values.
    """
    b, r, t, f = y.shape
    out = y.new_empty((b, mix_t.shape[0], t))
    mix = mix_t.T.contiguous()  # (r, C)
    for i in range(b):
        yi = y[i].reshape(r, t * f)
        for t0 in range(0, t, _MIX_BLOCK_FRAMES):
            k = min(_MIX_BLOCK_FRAMES, t - t0)
            prod = torch.mm(yi[:, t0 * f:(t0 + k) * f].T, mix)  # (k * f, C)
            out[i, :, t0:t0 + k] = prod.view(k, f, -1).amax(dim=1).T
    return out


def _filter_max_over_bands(win: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """``amax over bands of (win @ filters)``, block by block: ``(B, T, F, taps)`` windows and
    ``(taps, C)`` filters -> ``(B, T, C)`` (the full product is never formed, as above)."""
    b, t, f, taps = win.shape
    out = win.new_empty((b, t, filters.shape[1]))
    for i in range(b):
        for t0 in range(0, t, _MIX_BLOCK_FRAMES):
            block = win[i, t0:t0 + _MIX_BLOCK_FRAMES]
            k = block.shape[0]
            out[i, t0:t0 + k] = torch.mm(block.reshape(-1, taps), filters).view(k, f, -1).amax(dim=1)
    return out
