"""Where each backend's weights come from, under which licence, and whether they are in place.

``SOURCES`` is the one table of upstream addresses, file names and licences: ``models pull``
reads it, and tests point it at a local server by replacing entries
(``monkeypatch.setitem(SOURCES, "vggish", replace(SOURCES["vggish"], base_url=...))``).
A test keeps the shipped entries' real names. Nothing here touches the network.

Digests: the hub reports a sha256 for every large file of a repository revision, so MERT's are
looked up at pull time (never pinned here); VGGish's release files carry the first 8 hex digits
of their sha256 in their names, and only that is known in advance.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import ParameterError, WeightsError
from . import _weights

__all__ = ["WeightsSource", "WeightsStatus", "SOURCES", "source_for", "weights_status", "all_statuses"]

Kind = Literal["hf", "url", "pip"]
Status = Literal["ready", "missing", "bad-checksum"]

MERT_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # the loader's preference order
MERT_LICENCE = ("CC BY-NC 4.0", "https://creativecommons.org/licenses/by-nc/4.0/")


@dataclass(frozen=True)
class WeightsSource:
    """One backend's upstream weights.

    Attributes
    ----------
    name : str              backend name (``mert-v1-95m``)
    kind : {"hf", "url", "pip"}
        ``hf``: a Hugging Face repository (``repo_id``, fetched with huggingface_hub);
        ``url``: release files at ``base_url + file`` (their names carry a sha256 prefix);
        ``pip``: shipped inside a Python package (``pip_install``); not pulled.
    folder : str            sub-folder of ``$SOUNDALIKE_WEIGHTS_DIR``
    files : tuple of str    ``url``: the files to fetch; ``hf``: what the loader needs
    licence, licence_url : str
    non_commercial : bool   pulling needs an explicit yes (or ``--accept-licence``)
    revision : str          default revision (``hf``: branch, tag or commit; ``url``: release tag)
    """

    name: str
    kind: Kind
    folder: str
    files: tuple[str, ...]
    licence: str
    licence_url: str
    non_commercial: bool = False
    repo_id: str = ""
    base_url: str = ""
    revision: str = "main"
    pip_install: str = ""

    @property
    def source(self) -> str:
        """Where the files come from, as shown by ``models list``."""
        if self.kind == "hf":
            return f"hf://{self.repo_id}"
        if self.kind == "url":
            return self.base_url
        return self.pip_install


def _mert(name: str, variant: str) -> WeightsSource:
    return WeightsSource(name, "hf", variant, ("config.json", *MERT_WEIGHT_FILES), *MERT_LICENCE,
                         non_commercial=True, repo_id=f"m-a-p/{variant}")


def _musicnn(name: str, model: str) -> WeightsSource:
    return WeightsSource(name, "pip", f"musicnn/{model}", (".index", ".data-00000-of-00001"), "ISC",
                         "https://github.com/jordipons/musicnn/blob/master/LICENSE.md",
                         pip_install="pip install --no-deps musicnn==0.1.0", revision="musicnn 0.1.0")


SOURCES: dict[str, WeightsSource] = {
    "mert-v1-95m": _mert("mert-v1-95m", "MERT-v1-95M"),
    "mert-v1-330m": _mert("mert-v1-330m", "MERT-v1-330M"),
    "vggish": WeightsSource(
        "vggish", "url", "vggish", ("vggish-10086976.pth", "vggish_pca_params-970ea276.pth"),
        "Apache-2.0", "https://github.com/harritaylor/torchvggish/blob/master/LICENSE",
        base_url="https://github.com/harritaylor/torchvggish/releases/download/v0.1/", revision="v0.1",
    ),
    "musicnn-msd": _musicnn("musicnn-msd", "MSD_musicnn"),
    "musicnn-mtt": _musicnn("musicnn-mtt", "MTT_musicnn"),
    "musicnn-msd-vgg": _musicnn("musicnn-msd-vgg", "MSD_vgg"),
    "musicnn-mtt-vgg": _musicnn("musicnn-mtt-vgg", "MTT_vgg"),
}


def source_for(name: str) -> WeightsSource:
    """The table entry of backend `name`; a clear error lists the names that have one."""
    try:
        return SOURCES[name]
    except KeyError:
        raise ParameterError(
            f"No weights source for {name!r}; choose one of: {', '.join(SOURCES)} (see `soundalike models list`)."
        ) from None


@dataclass(frozen=True)
class WeightsStatus:
    """One row of ``models list`` (CONTRACTS.md, ``models list --json``)."""

    name: str
    status: Status
    path: str | None
    size_bytes: int | None
    source: str
    licence: str
    revision: str | None
    sha256: str | None
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "path": self.path, "size_bytes": self.size_bytes,
                "source": self.source, "licence": self.licence, "revision": self.revision, "sha256": self.sha256,
                "detail": self.detail}


def _size(paths: list[Path]) -> int:
    return sum(p.resolve().stat().st_size for p in paths)


def _revision_of(folder: Path, default: str | None) -> str | None:
    """The manifest's revision, else a hub snapshot's commit (its folder name), else `default`."""
    manifest = _weights.read_manifest(folder)
    if manifest and manifest.get("revision"):
        return str(manifest["revision"])
    if folder.parent.name == "snapshots":
        return folder.name
    return default


def _checked(src: WeightsSource, files: list[Path], main: Path, revision: str | None) -> WeightsStatus:
    """Verify every file's digest promises; ``bad-checksum`` names the first that fails."""
    folder = str(main.parent)
    try:
        digests = {p: _weights.check_file_digest(p) for p in files}
    except WeightsError as exc:
        return WeightsStatus(src.name, "bad-checksum", folder, _size(files), src.source, src.licence, revision, None,
                             str(exc))
    return WeightsStatus(src.name, "ready", folder, _size(files), src.source, src.licence, revision, digests[main])


def _missing(src: WeightsSource, where: Path | str, detail: str) -> WeightsStatus:
    return WeightsStatus(src.name, "missing", str(where), None, src.source, src.licence, None, None, detail)


def default_target(src: WeightsSource) -> Path:
    """Where ``models pull`` puts `src`'s files: ``$SOUNDALIKE_WEIGHTS_DIR/<folder>``, else the tool cache."""
    env = _weights.weights_dir()
    if env is not None:
        return env / src.folder
    if src.kind == "hf":
        return _weights.hf_hub_cache() / ("models--" + src.repo_id.replace("/", "--"))
    if src.kind == "url":
        return _weights.torch_hub_checkpoints()
    return Path(src.folder)


def weights_status(name: str) -> WeightsStatus:
    """Readiness of one backend's weights, with every digest the files promise checked.

    Hashes the files (seconds for a 1.3 GB checkpoint, cached per path, size and mtime).
    """
    src = source_for(name)
    if src.kind == "hf":
        from .mert import find_mert_weights

        found = find_mert_weights(src.folder)
        if found is None:
            return _missing(src, default_target(src), f"run `soundalike models pull {name}`")
        config, weights = found
        return _checked(src, [config, weights], weights, _revision_of(weights.parent, None))
    if src.kind == "url":
        from .vggish import PCA_FILE, find_vggish_weights

        model, pca = find_vggish_weights()
        if model is None:
            return _missing(src, default_target(src), f"run `soundalike models pull {name}`")
        if pca is None:
            return _missing(src, model.parent, f"{PCA_FILE} is missing beside {model.name}; run `soundalike models pull {name}`")
        return _checked(src, [model, pca], model, _revision_of(model.parent, None))
    from .musicnn import find_musicnn_checkpoint

    model_name = src.folder.split("/", 1)[1]
    folder = find_musicnn_checkpoint(model_name)
    if folder is None:
        return _missing(src, f"(the musicnn package)/{model_name}", f"run `{src.pip_install}`")
    files = [folder / f for f in src.files]
    revision = src.revision
    try:
        revision = f"musicnn {importlib.metadata.version('musicnn')}"
    except importlib.metadata.PackageNotFoundError:
        pass
    return _checked(src, files, files[1], revision)


def all_statuses() -> list[WeightsStatus]:
    """``weights_status`` of every table entry, in table order."""
    return [weights_status(n) for n in SOURCES]

