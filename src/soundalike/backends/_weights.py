"""Where model weights are found, and checks that they are the expected files.

Weights are never downloaded here (constructors never touch the network). A backend looks, in
order, at:

1. an explicit path (``load_backend(..., weights=PATH)`` / ``--weights PATH``): a file, or a
   directory holding the files;
2. ``$SOUNDALIKE_WEIGHTS_DIR``, laid out as::

       $SOUNDALIKE_WEIGHTS_DIR/
         vggish/vggish-10086976.pth                 # torchvggish state dict
         vggish/vggish_pca_params-970ea276.pth      # PCA parameters (postprocessing)
         MERT-v1-95M/config.json                    # as in the Hugging Face repo m-a-p/MERT-v1-95M
         MERT-v1-95M/model.safetensors              # or pytorch_model.bin
         MERT-v1-330M/config.json
         MERT-v1-330M/model.safetensors             # or pytorch_model.bin

3. the caches of the tools people already use: the Hugging Face hub cache
   (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``;
   ``models--m-a-p--MERT-v1-95M/snapshots/<rev>/``) for MERT and the torch hub cache
   (``$TORCH_HOME/hub/checkpoints``, else ``~/.cache/torch/hub/checkpoints``) for VGGish,
   where ``torchvggish`` downloads its files.

Weights are fetched only by ``soundalike models pull`` (``_pull.py``), never by a backend.

Checks: a file name that ends in ``-<hex>.<ext>`` (torch hub's convention, e.g.
``vggish-10086976.pth``) must have a sha256 starting with those hex digits; a file of the
Hugging Face cache that links to ``blobs/<64 hex>`` must have that sha256 (the hub names
large-file blobs by their sha256) and one that links to ``blobs/<40 hex>`` that git blob id
(small files are stored in git); a file listed in the ``soundalike-weights.json`` manifest that
``models pull`` / ``models import`` write beside the files must have the sha256 recorded there.
A mismatch is a :class:`~soundalike.errors.WeightsError`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path

from ..errors import WeightsError

__all__ = [
    "WEIGHTS_ENV",
    "sha256_file",
    "check_file_digest",
    "weights_dir",
    "hf_hub_cache",
    "hf_snapshot",
    "torch_hub_checkpoints",
    "MANIFEST_NAME",
    "read_manifest",
    "git_blob_sha1",
]

log = logging.getLogger(__name__)

WEIGHTS_ENV = "SOUNDALIKE_WEIGHTS_DIR"

_NAME_DIGEST = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")

#: written by ``models pull`` / ``models import`` beside the files they put in place
MANIFEST_NAME = "soundalike-weights.json"

# (resolved path, size, mtime_ns) -> sha256; hashing a 1.3 GB checkpoint takes seconds
_DIGESTS: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Lowercase hex sha256 of a file's bytes (cached per path, size and mtime)."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    digest = _DIGESTS.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
        digest = h.hexdigest()
        _DIGESTS[key] = digest
    return digest


def git_blob_sha1(path: str | os.PathLike[str]) -> str:
    """The git blob id of a file (sha1 of ``"blob <size>\\0"`` + bytes), as the hub names small files."""
    p = Path(path)
    h = hashlib.sha1(f"blob {p.stat().st_size}\0".encode())
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(folder: str | os.PathLike[str]) -> dict | None:
    """The ``soundalike-weights.json`` manifest of a weights folder, or None when there is none.

    Raises
    ------
    WeightsError
        The manifest exists but is not a JSON object with a ``files`` mapping.
    """
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"Weights manifest {str(path)!r} cannot be read ({exc}); pull or import the weights again.") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
        raise WeightsError(f"Weights manifest {str(path)!r} has no 'files' mapping; pull or import the weights again.")
    return doc


def expected_digest_prefix(path: str | os.PathLike[str]) -> str | None:
    """The sha256 prefix a file's name promises (``vggish-10086976.pth`` -> ``10086976``)."""
    m = _NAME_DIGEST.search(Path(path).name)
    return m.group(1) if m else None


def check_file_digest(path: str | os.PathLike[str], expected: str | None = None) -> str:
    """Hash `path` and check it against `expected` (a sha256 or a prefix of one).

    When `expected` is None, the prefix in the file name (if any), the Hugging Face blob name
    (if the path links into a hub cache) and the manifest beside the file (if any) are checked
    instead.

    Returns
    -------
    str
        The file's full sha256.

    Raises
    ------
    WeightsError
        The file is missing or its digest differs from the expected one.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"Weights file {str(p)!r} does not exist or is not a file.")
    digest = sha256_file(p)
    promises: list[tuple[str, str]] = []
    if expected:
        promises.append((expected.lower(), "the expected checksum"))
    else:
        prefix = expected_digest_prefix(p)
        if prefix:
            promises.append((prefix, "the digest in its name"))
        target = p.resolve()
        if p.is_symlink() and target.parent.name == "blobs" and _HEX64.match(target.name):
            promises.append((target.name, "its Hugging Face blob name"))
        if p.is_symlink() and target.parent.name == "blobs" and _HEX40.match(target.name):
            actual = git_blob_sha1(p)
            if actual != target.name:
                raise WeightsError(
                    f"Weights file {str(p)!r}: expected git blob id {target.name} (its Hugging Face blob name), "
                    f"got {actual}; the file is corrupt. Pull it again (soundalike models pull)."
                )
        manifest = read_manifest(p.parent)
        recorded = (manifest or {}).get("files", {}).get(p.name)
        if isinstance(recorded, dict) and recorded.get("sha256"):
            promises.append((str(recorded["sha256"]).lower(), f"the sha256 recorded in {MANIFEST_NAME}"))
    for want, what in promises:
        if not digest.startswith(want):
            raise WeightsError(
                f"Weights file {str(p)!r} has sha256 {digest}, which does not match {what}: expected {want}; "
                "the file is corrupt, truncated or a different release. Pull it again with "
                "`soundalike models pull` (or rename it if it is a deliberate custom checkpoint)."
            )
    return digest


def weights_dir() -> Path | None:
    """``$SOUNDALIKE_WEIGHTS_DIR`` when set, else None."""
    value = os.environ.get(WEIGHTS_ENV, "").strip()
    return Path(value).expanduser() if value else None


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache directory (no import of huggingface_hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def hf_snapshot(repo_id: str, *, required: tuple[str, ...] = ("config.json",)) -> Path | None:
    """The snapshot folder of `repo_id` in the hub cache that holds every `required` file.

    The revision ``refs/main`` points to is preferred, then the newest snapshot.
    """
    root = hf_hub_cache() / ("models--" + repo_id.replace("/", "--"))
    snaps = root / "snapshots"
    if not snaps.is_dir():
        return None
    candidates: list[Path] = []
    ref = root / "refs" / "main"
    if ref.is_file():
        candidates.append(snaps / ref.read_text().strip())
    candidates += sorted((d for d in snaps.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime, reverse=True)
    for snap in candidates:
        if snap.is_dir() and all((snap / f).exists() for f in required):
            return snap
    return None


def torch_hub_checkpoints() -> Path:
    """torch hub's download folder (``$TORCH_HOME/hub/checkpoints``), without importing torch."""
    if os.environ.get("TORCH_HOME"):
        home = Path(os.environ["TORCH_HOME"]).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        home = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "torch"
    return home / "hub" / "checkpoints"


def find_named(folder: Path, names: tuple[str, ...], patterns: tuple[str, ...] = ()) -> Path | None:
    """The first of `names` in `folder`, else the first (sorted) match of `patterns`."""
    if not folder.is_dir():
        return None
    for n in names:
        if (folder / n).is_file():
            return folder / n
    for pat in patterns:
        hits = sorted(p for p in folder.glob(pat) if p.is_file())
        if hits:
            return hits[0]
    return None
