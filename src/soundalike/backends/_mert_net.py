"""MERT-v1 on transformers' own ``HubertModel`` (imported lazily by :mod:`.mert`).

MERT-v1's remote code (``modeling_MERT.py``) subclasses HubertModel: with the CQT branch and
deepnorm off (both off in every v1 release) its forward pass is HubertModel's, so the config is
mapped field by field onto :class:`transformers.HubertConfig` and the checkpoint loads into
HubertModel without ``trust_remote_code``. Checkpoint quirks handled here:

- older saves hold the positional convolution's weight norm as ``weight_g``/``weight_v``;
  they become ``parametrizations.weight.original0``/``original1``;
- ``masked_spec_embed`` (training-time masking) and pre-training heads (``final_proj``,
  ``label_embs_concat``, ...) are dropped with one log line; any missing tensor is an error;
- keys may carry a prefix (``mert_model.``, ``model.``, ``hubert.``), which is removed.

One runtime guard: under CPU autocast (``dtype="bfloat16"`` on the CPU) the grouped positional
convolution runs in float32 (:func:`guard_cpu_autocast`). oneDNN 3.12 (torch 2.13's CPU build)
returns wrong bf16 results for grouped ``conv1d`` with 8 (or 4) channels per group, kernel 16 (the
tiny test layout: cosine 0.02 to fp32; mkldnn off or fp32 is right), the family of
pytorch/pytorch#163347. The real layouts (48 and 64 channels per group) were right here, but the
convolution is 2 % of the FLOPs, and CPU bf16 is opt-in, so it is never trusted to oneDNN's bf16.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from ..errors import WeightsError

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000

#: MERT-v1 fields copied onto HubertConfig (everything that shapes the forward pass)
MAPPED_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "layer_norm_eps",
    "feat_extract_norm",
    "feat_extract_activation",
    "conv_dim",
    "conv_stride",
    "conv_kernel",
    "conv_bias",
    "num_conv_pos_embeddings",
    "num_conv_pos_embedding_groups",
    "conv_pos_batch_norm",
    "do_stable_layer_norm",
    "feat_proj_layer_norm",
)

_CONV = {
    "conv_dim": [512] * 7,
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],  # 320x down-sampling: 75 frames/s at 24 kHz
    "conv_bias": False,
    "feat_extract_norm": "group",
    "feat_extract_activation": "gelu",
    "feat_proj_layer_norm": True,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
}

LAYOUTS: dict[str, dict[str, Any]] = {
    "MERT-v1-95M": {
        **_CONV,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "do_stable_layer_norm": False,  # post-LN encoder
    },
    "MERT-v1-330M": {
        **_CONV,
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
        "do_stable_layer_norm": True,  # pre-LN encoder with a final LayerNorm
    },
}

#: same structure, small and fast (tests)
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "conv_dim": [32] * 7,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
}

_DROP_PREFIXES = ("mert_model.", "model.", "hubert.", "module.")
_WN_RENAMES = {
    "pos_conv_embed.conv.weight_g": "pos_conv_embed.conv.parametrizations.weight.original0",
    "pos_conv_embed.conv.weight_v": "pos_conv_embed.conv.parametrizations.weight.original1",
}


def mert_config(layout: str, *, tiny: bool = False, num_hidden_layers: int | None = None) -> dict[str, Any]:
    """A ``config.json`` dict in MERT's own format (``model_type: mert_model``) for a layout."""
    cfg = dict(LAYOUTS[layout])
    if tiny:
        cfg.update(TINY)
    if num_hidden_layers is not None:
        cfg["num_hidden_layers"] = int(num_hidden_layers)
    cfg.update(
        {
            "architectures": ["MERTModel"],
            "auto_map": {"AutoConfig": "configuration_MERT.MERTConfig", "AutoModel": "modeling_MERT.MERTModel"},
            "model_type": "mert_model",
            "sample_rate": SAMPLE_RATE,
            "feature_extractor_cqt": False,
            "feature_extractor_cqt_bins": 336,
            "deepnorm": False,
            "attention_relax": -1.0,
            "mask_time_prob": 0.05,
            "mask_time_length": 5,
            "apply_spec_augment": True,
            "layerdrop": 0.0,
            "num_feat_extract_layers": len(cfg["conv_dim"]),
            "vocab_size": 32,
            "torch_dtype": "float32",
        }
    )
    return cfg


def hubert_config(mert_cfg: dict[str, Any], *, attention: str = "sdpa", source: str = "config"):
    """Map a MERT-v1 config onto :class:`transformers.HubertConfig` (inference: no dropout/masking).

    Raises
    ------
    WeightsError
        The config is not MERT-v1-compatible (CQT branch, deepnorm, another sample rate).
    """
    from transformers import HubertConfig

    model_type = mert_cfg.get("model_type", "mert_model")
    if model_type not in ("mert_model", "hubert"):
        raise WeightsError(f"{source} has model_type {model_type!r}; expected 'mert_model' (MERT-v1).")
    if mert_cfg.get("feature_extractor_cqt"):
        raise WeightsError(f"{source} enables the CQT feature branch (MERT v0-style); only MERT-v1 is supported.")
    if mert_cfg.get("deepnorm"):
        raise WeightsError(f"{source} enables deepnorm, which MERT-v1 releases do not use; unsupported.")
    sr = int(mert_cfg.get("sample_rate", SAMPLE_RATE))
    if sr != SAMPLE_RATE:
        raise WeightsError(f"{source} declares sample_rate {sr}; MERT-v1 runs at {SAMPLE_RATE} Hz.")
    kwargs: dict[str, Any] = {k: mert_cfg[k] for k in MAPPED_FIELDS if k in mert_cfg}
    for k in ("conv_dim", "conv_stride", "conv_kernel"):
        if k in kwargs:
            kwargs[k] = [int(v) for v in kwargs[k]]
    if "layer_norm_eps" in kwargs:
        kwargs["layer_norm_eps"] = float(kwargs["layer_norm_eps"])
    return HubertConfig(
        **kwargs,
        # masking and dropout only act in training; without masking there is no masked_spec_embed
        apply_spec_augment=False,
        mask_time_prob=0.0,
        mask_feature_prob=0.0,
        layerdrop=0.0,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        final_dropout=0.0,
        attn_implementation=attention,
    )


def build_random(mert_cfg: dict[str, Any], *, seed: int = 0, attention: str = "sdpa"):
    """A HubertModel with seeded random weights (global RNG state untouched)."""
    from transformers import HubertModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HubertModel(hubert_config(mert_cfg, attention=attention))
    return guard_cpu_autocast(model.eval())


_GUARDED: dict[type, type] = {}


def guard_cpu_autocast(model):
    """Run `model`'s positional convolution in float32 under CPU autocast (see the module docstring).

    The module's class is swapped for a subclass (same parameters and state dict keys, so
    checkpoints, ``deepcopy`` and ``torch.compile`` see the same module); on accelerators and in
    float32 its forward is the original one.
    """
    pos = model.encoder.pos_conv_embed
    base = type(pos)
    if base not in _GUARDED.values():
        if base not in _GUARDED:

            def forward(self, hidden_states):
                if hidden_states.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
                    with torch.autocast("cpu", enabled=False):
                        return base.forward(self, hidden_states.float())
                return base.forward(self, hidden_states)

            _GUARDED[base] = type(f"Fp32OnCpu{base.__name__}", (base,), {"forward": forward, "__module__": __name__})
        pos.__class__ = _GUARDED[base]
    return model


def read_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file or a ``.bin``/``.pt`` state dict (``weights_only=True``)."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(
            f"Cannot read MERT weights {str(path)!r}: {exc}. Expected model.safetensors or "
            "pytorch_model.bin from the Hugging Face repo (read with weights_only=True)."
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"MERT weights {str(path)!r} do not hold a state dict.")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _key_candidates(key: str):
    """The key itself, without a known prefix, and each with weight_g/weight_v renamed."""
    bases = [key] + [key[len(p):] for p in _DROP_PREFIXES if key.startswith(p)]
    for base in bases:
        yield base
        for old, new in _WN_RENAMES.items():
            if base.endswith(old):
                yield base[: -len(old)] + new


def remap_state(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], *, source: str = "weights"):
    """Rename checkpoint keys to HubertModel's, drop unused ones, refuse missing ones.

    Returns
    -------
    state : dict
        Exactly the keys of `expected`.
    dropped : list of str
        Checkpoint keys that HubertModel does not use.
    """
    out: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, value in state.items():
        target = next((c for c in _key_candidates(key) if c in expected and c not in out), None)
        if target is None:
            dropped.append(key)
        else:
            out[target] = value
    missing = sorted(set(expected) - set(out))
    if missing:
        raise WeightsError(
            f"MERT {source} lacks {len(missing)} tensors the model needs ({', '.join(missing[:5])}"
            f"{', ...' if len(missing) > 5 else ''}); is config.json from the same release as the weights?"
        )
    bad = [f"{k} {tuple(out[k].shape)} != {tuple(v.shape)}" for k, v in expected.items() if out[k].shape != v.shape]
    if bad:
        raise WeightsError(
            f"MERT {source} has tensors of the wrong shape for its config.json: {'; '.join(bad[:4])}."
        )
    return out, sorted(dropped)


def load_pretrained(config_path: str | Path, weights_path: str | Path, *, attention: str = "sdpa"):
    """HubertModel with MERT-v1 weights from a ``config.json`` and a weights file."""
    from transformers import HubertModel

    config_path = Path(config_path)
    try:
        mert_cfg = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"Cannot read MERT config {str(config_path)!r}: {exc}.") from exc
    cfg = hubert_config(mert_cfg, attention=attention, source=str(config_path))
    # built on the meta device (no random init: seconds for 330M), then the tensors are assigned
    with torch.device("meta"):
        model = HubertModel(cfg)
    expected = model.state_dict()
    state, dropped = remap_state(read_state(weights_path), expected, source=f"weights {str(weights_path)!r}")
    if dropped:
        log.info("MERT weights %s: dropped %d unused tensors: %s", weights_path, len(dropped), ", ".join(dropped))
    state = {k: v.to(expected[k].dtype).contiguous() for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:  # a tensor that is neither a parameter in the file nor a persistent buffer
        raise WeightsError(f"MERT model from {str(weights_path)!r} has uninitialised tensors: {', '.join(leftover[:5])}.")
    return guard_cpu_autocast(model.eval()), mert_cfg, dropped


def export_checkpoint(model, *, weight_norm_gv: bool = True, extra: dict[str, torch.Tensor] | None = None):
    """A state dict in the official layout (``weight_g``/``weight_v`` when asked), for tests."""
    state = {}
    for k, v in model.state_dict().items():
        if weight_norm_gv:
            for old, new in _WN_RENAMES.items():
                if k.endswith(new):
                    k = k[: -len(new)] + old
        state[k] = v.detach().clone().contiguous()
    state.update(extra or {})
    return state


def quantize_linear_int8(model):
    """Dynamic int8 quantisation of every ``nn.Linear`` (weights int8, activations quantised per batch)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's migration notice (torchao is not a dependency)
        return torch.ao.quantization.quantize_dynamic(model.eval(), {torch.nn.Linear}, dtype=torch.qint8)


def pooled_hidden_states(model, x: torch.Tensor, *, keep_layer: int | None = None):
    """Run MERT and pool every hidden state over time.

    Parameters
    ----------
    x : torch.Tensor [shape=(batch, n_samples)]   normalised 24 kHz audio

    Returns
    -------
    mean, mean_sq : torch.Tensor [shape=(batch, n_layers + 1, d), dtype=float64]
        Time means of each hidden state and of its square. Index 0 is the encoder input (CNN
        features + positional convolution), index -1 the top layer *after* the final LayerNorm
        (transformers 5 returns the pre-LayerNorm value in ``hidden_states[-1]`` for pre-LN
        encoders; ``last_hidden_state`` is the one MERT's authors used).
    frames : torch.Tensor or None [shape=(batch, n_frames, d)]
        The frame-level hidden state ``keep_layer`` (for timestamp embeddings), else None.
    """
    out = model(x, output_hidden_states=True)
    states = list(out.hidden_states)
    states[-1] = out.last_hidden_state
    # float32 sums (not float64): a float64 copy of 13 states of a batch of 64 is ~11 GB on a GPU
    mean = torch.stack([h.float().mean(dim=1) for h in states], dim=1).double()
    mean_sq = torch.stack([h.float().square().mean(dim=1) for h in states], dim=1).double()
    frames = states[keep_layer].float() if keep_layer is not None else None
    return mean, mean_sq, frames
