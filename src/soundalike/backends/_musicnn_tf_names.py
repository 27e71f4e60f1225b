"""The TensorFlow variable names of musicnn's checkpoints, per architecture (no torch import).

:mod:`._musicnn_net` loads the weights through this mapping; :mod:`.musicnn` checks a
checkpoint's variable names against it when the backend is created, so a process that only
needs the model key (the parent of analysis workers) never imports torch.
"""

from __future__ import annotations

__all__ = ["tf_mapping"]


def tf_mapping(arch: str) -> dict[str, tuple[str, str]]:
    """torch parameter name -> (TF variable, layout) of `arch` (``"musicnn"`` or ``"vgg"``)."""
    m: dict[str, tuple[str, str]] = {}
    _bn_map(m, "in_bn", 0)
    if arch == "vgg":
        for i in range(5):
            _conv_map(m, f"convs.{i}", f"{i + 1}CNN", "conv2d")
            _bn_map(m, f"bns.{i}", i + 1)
        _dense_map(m, "out", "dense")
        return m
    convs = ["timbral.0", "timbral.1", "temporal.0", "temporal.1", "temporal.2"]
    bns = ["timbral_bn.0", "timbral_bn.1", "temporal_bn.0", "temporal_bn.1", "temporal_bn.2"]
    for i, (c, b) in enumerate(zip(convs, bns)):
        _conv_map(m, c, f"conv2d{_sfx(i)}", "conv2d")
        _bn_map(m, b, i + 1)
    for i in range(3):
        _conv_map(m, f"mid.{i}", f"conv2d{_sfx(i + 5)}", "conv1d")
        _bn_map(m, f"mid_bn.{i}", i + 6)
    _bn_map(m, "pool_bn", 9)
    _dense_map(m, "dense", "dense")
    _bn_map(m, "dense_bn", 10)
    _dense_map(m, "out", "dense_1")
    return m


def _sfx(i: int) -> str:
    return f"_{i}" if i else ""


def _conv_map(m: dict, mod: str, tf: str, layout: str) -> None:
    m[f"{mod}.weight"] = (f"{tf}/kernel", layout)
    m[f"{mod}.bias"] = (f"{tf}/bias", "vector")


def _dense_map(m: dict, mod: str, tf: str) -> None:
    m[f"{mod}.weight"] = (f"{tf}/kernel", "dense")
    m[f"{mod}.bias"] = (f"{tf}/bias", "vector")


def _bn_map(m: dict, mod: str, i: int) -> None:
    tf = f"batch_normalization{_sfx(i)}"
    m[f"{mod}.weight"] = (f"{tf}/gamma", "vector")
    m[f"{mod}.bias"] = (f"{tf}/beta", "vector")
    m[f"{mod}.running_mean"] = (f"{tf}/moving_mean", "vector")
    m[f"{mod}.running_var"] = (f"{tf}/moving_variance", "vector")
