"""Front ends in torch, for accelerators: the same numbers as the CPU front ends, on the device.

On the CPU the backends compute their inputs with numpy or librosa on the host. On a GPU that
host work would cost more than the network (a 30 s clip's VGGish STFT is ~10 ms of numpy; MERT's
float64 normalisation of a batch of 64 windows ~0.3 s), and librosa may not be installed there.
These functions take the decoded PCM as a tensor already on the device:

- :func:`normalize_windows`: MERT's per-window zero mean, unit variance
  (:func:`soundalike.backends.mert.normalize_chunks`);
- :func:`vggish_log_mel_examples`: VGGish's log-mel patches
  (:func:`soundalike.backends.vggish.log_mel_examples`);
- :func:`musicnn_log_mel`: musicnn's ``log10(10000 * mel + 1)`` of librosa's mel spectrogram
  (:func:`soundalike.backends._musicnn_net.log_mel`; the slaney mel matrix is rebuilt here with
  numpy, so librosa is not needed).

Each computes in float64 where the device has it (everything but Apple's MPS) and returns
float32; the tests check each against its CPU twin on the CPU. Imported lazily (needs torch).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

__all__ = [
    "compute_dtype",
    "musicnn_log_mel",
    "musicnn_mel_matrix",
    "normalize_windows",
    "vggish_log_mel_examples",
]

# musicnn: librosa.feature.melspectrogram defaults with these (see backends/musicnn.py)
MUSICNN_SR, MUSICNN_N_FFT, MUSICNN_HOP, MUSICNN_N_MELS = 16000, 512, 256, 96


def compute_dtype(device: torch.device | str) -> torch.dtype:
    """float64 where the device supports it (the CPU twins compute in float64), else float32."""
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


def normalize_windows(x: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per row: ``(x - mean) / sqrt(var + 1e-7)``, as
    Wav2Vec2FeatureExtractor(do_normalize=True) and :func:`~soundalike.backends.mert.normalize_chunks`.

    Parameters
    ----------
    x : torch.Tensor [shape=(n_windows, n_samples)]   on any device

    Returns
    -------
    torch.Tensor [shape=(n_windows, n_samples), dtype=float32]   on the same device
    """
    xd = x.to(compute_dtype(x.device))
    var, mean = torch.var_mean(xd, dim=1, keepdim=True, correction=0)
    return ((xd - mean) / torch.sqrt(var + 1e-7)).float()


def vggish_log_mel_examples(x: torch.Tensor) -> torch.Tensor:
    """VGGish input patches, as :func:`soundalike.backends.vggish.log_mel_examples`.

    Parameters
    ----------
    x : torch.Tensor [shape=(n_clips, n_samples), n_samples >= 15600]   16 kHz

    Returns
    -------
    torch.Tensor [shape=(n_clips, n_examples, 96, 64), dtype=float32]
    """
    from . import vggish as v

    dt = compute_dtype(x.device)
    xd = x.to(dt)
    n_frames = 1 + (xd.shape[1] - v.WINDOW) // v.HOP
    frames = xd.unfold(1, v.WINDOW, v.HOP)[:, :n_frames]
    window = torch.hann_window(v.WINDOW, periodic=True, dtype=dt, device=x.device)
    spec = torch.fft.rfft(frames * window, n=v.N_FFT, dim=-1).abs()
    mel = torch.tensor(v.mel_matrix(), dtype=dt, device=x.device)
    log_mel = torch.log(spec @ mel + v.LOG_OFFSET)
    n_ex = n_frames // v.EXAMPLE_FRAMES
    out = log_mel[:, : n_ex * v.EXAMPLE_FRAMES].reshape(x.shape[0], n_ex, v.EXAMPLE_FRAMES, v.N_MELS)
    return out.float()


def _hz_to_mel_slaney(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, ``htk=False``): linear below 1 kHz, log above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_hz / f_sp + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz_slaney(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@functools.lru_cache(maxsize=1)
def musicnn_mel_matrix() -> np.ndarray:
    """``librosa.filters.mel(sr=16000, n_fft=512, n_mels=96)`` (slaney scale and area norm), in numpy.

    Returns
    -------
    np.ndarray [shape=(96, 257), dtype=float32]   librosa's own dtype (float32)
    """
    fft_freqs = np.linspace(0.0, MUSICNN_SR / 2.0, 1 + MUSICNN_N_FFT // 2)
    mel_pts = np.linspace(_hz_to_mel_slaney(0.0), _hz_to_mel_slaney(MUSICNN_SR / 2.0), MUSICNN_N_MELS + 2)
    mel_f = _mel_to_hz_slaney(mel_pts)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]  # slaney: constant energy per band
    out = weights.astype(np.float32)
    out.setflags(write=False)
    return out


def musicnn_log_mel(x: torch.Tensor) -> torch.Tensor:
    """musicnn's input, as :func:`soundalike.backends._musicnn_net.log_mel` (which uses librosa).

    librosa's ``melspectrogram``: centred frames (zero padding of ``n_fft // 2`` at both ends,
    librosa's ``pad_mode="constant"``), periodic Hann window, power 2, the slaney mel matrix;
    then ``log10(10000 * mel + 1)``.

    Parameters
    ----------
    x : torch.Tensor [shape=(n_clips, n_samples)]   16 kHz

    Returns
    -------
    torch.Tensor [shape=(n_clips, 1 + n_samples // 256, 96), dtype=float32]
    """
    dt = compute_dtype(x.device)
    xd = torch.nn.functional.pad(x.to(dt), (MUSICNN_N_FFT // 2, MUSICNN_N_FFT // 2))
    frames = xd.unfold(1, MUSICNN_N_FFT, MUSICNN_HOP)
    window = torch.hann_window(MUSICNN_N_FFT, periodic=True, dtype=dt, device=x.device)
    power = torch.fft.rfft(frames * window, dim=-1).abs().square()
    mel = power @ torch.tensor(musicnn_mel_matrix(), dtype=dt, device=x.device).T
    return torch.log10(10000.0 * mel + 1.0).float()
