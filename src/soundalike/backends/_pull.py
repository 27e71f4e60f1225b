"""``models pull`` and ``models import``: fetch or copy weights, verify them, put them in place.

Rules every path keeps:

* the licence is checked before any byte is fetched: a non-commercial one (MERT, CC BY-NC 4.0)
  needs ``accept_licence=True`` or a yes from ``confirm``;
* a file is verified (sha256) before it gets its final name, and a ``soundalike-weights.json``
  manifest (revision, sha256 and size of every file, source) is written last; a corrupted file is
  deleted and nothing is registered;
* MERT comes from the Hugging Face hub through ``huggingface_hub``: the revision is resolved to
  a commit and the sha256 the hub reports for the weights file (its LFS object id) is what the
  download is checked against — nothing is pinned in this code that could not be looked up.
  Files go to ``$SOUNDALIKE_WEIGHTS_DIR/<variant>/`` when that is set, else into the HF cache.
  huggingface_hub resumes a cut transfer within the run (a ``Range`` request, up to 5 tries);
  an interrupted process starts that file again (huggingface_hub 2.x keeps no partial file);
* VGGish's two release files are fetched here (stdlib HTTP) into ``<name>.part``, resumed with
  a ``Range`` request in the same run (3 tries) and by the next run, and checked against the
  sha256 prefix in their names.

Timeouts: ``$HF_HUB_DOWNLOAD_TIMEOUT`` seconds (default 10) for every request of a pull.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from ..errors import ParameterError, WeightsError
from . import _weights
from ._sources import MERT_WEIGHT_FILES, WeightsSource, default_target, source_for

__all__ = ["Transfer", "LicenceRefused", "PullResult", "pull", "import_weights", "check_licence", "licence_line",
           "download_timeout"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_URL_TRIES = 3


class Transfer(Protocol):
    """Progress of byte transfers (the CLI draws it with rich on stderr)."""

    def start(self, name: str, total: int | None, done: int = 0) -> None: ...

    def advance(self, n: int) -> None: ...


class _NoTransfer:
    def start(self, name: str, total: int | None, done: int = 0) -> None:
        pass

    def advance(self, n: int) -> None:
        pass


class LicenceRefused(WeightsError):
    """The user did not accept a non-commercial licence; nothing was fetched."""


@dataclass(frozen=True)
class PullResult:
    name: str
    folder: Path
    revision: str
    files: dict[str, str]  # file name -> sha256
    size_bytes: int


def download_timeout() -> float:
    """Seconds a pull waits for a server (``$HF_HUB_DOWNLOAD_TIMEOUT``, default 10)."""
    value = os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT", "").strip()
    try:
        return float(value) if value else 10.0
    except ValueError:
        raise ParameterError(f"HF_HUB_DOWNLOAD_TIMEOUT must be a number of seconds, got {value!r}.") from None


def licence_line(src: WeightsSource) -> str:
    """One line naming the licence (shown before anything is fetched)."""
    note = " — non-commercial use only" if src.non_commercial else ""
    return f"{src.name} weights are licensed {src.licence}{note} ({src.licence_url})."


def check_licence(src: WeightsSource, accept_licence: bool, confirm: Callable[[WeightsSource], bool] | None) -> None:
    if not src.non_commercial or accept_licence:
        return
    if confirm is not None and confirm(src):
        return
    raise LicenceRefused(
        f"{src.name}: the {src.licence} licence (non-commercial) was not accepted, so nothing was fetched; "
        "answer yes or pass --accept-licence."
    )


# --- shared file handling ----------------------------------------------------------------------
def _write_manifest(folder: Path, src: WeightsSource, revision: str, files: dict[str, str], origin: str) -> None:
    doc = {
        "name": src.name,
        "source": origin,
        "revision": revision,
        "licence": src.licence,
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": {n: {"sha256": d, "size": (folder / n).resolve().stat().st_size} for n, d in sorted(files.items())},
    }
    tmp = folder / (_weights.MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, folder / _weights.MANIFEST_NAME)


def _drop_stale(folder: Path, keep: set[str]) -> None:
    """Remove files an older manifest listed that the new one does not (e.g. another format)."""
    old = _weights.read_manifest(folder) if (folder / _weights.MANIFEST_NAME).is_file() else None
    for name in (old or {}).get("files", {}):
        if name not in keep and (folder / name).is_file():
            (folder / name).unlink()


def _mismatch(what: str, origin: str, expected: str, actual: str) -> WeightsError:
    return WeightsError(
        f"{what} from {origin}: expected sha256 {expected}, got {actual}; the file was deleted and nothing was "
        "registered. Pull again; if it repeats, the source is corrupt or not the expected release."
    )


# --- release files over plain HTTP (VGGish) ------------------------------------------------------
def _url_error(url: str, exc: BaseException, timeout: float) -> WeightsError:
    reason = getattr(exc, "reason", exc)
    if isinstance(exc, urllib.error.HTTPError):
        return WeightsError(f"{url}: HTTP {exc.code} {exc.reason}; check the address (soundalike's sources table) "
                            "or try again later.")
    if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
        return WeightsError(f"{url}: no answer within {timeout:g} s (HF_HUB_DOWNLOAD_TIMEOUT); try again or raise it.")
    if isinstance(reason, ConnectionRefusedError):
        return WeightsError(f"{url}: connection refused; check the network (or a proxy) and try again.")
    return WeightsError(f"{url}: cannot connect ({reason}); check the network (or a proxy) and try again.")


def _fetch_once(url: str, part: Path, timeout: float, transfer: Transfer) -> int | None:
    """Append what is missing of `url` to `part`; return the full size when the server gave it."""
    done = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "soundalike", "Accept-Encoding": "identity"}
    if done:
        headers["Range"] = f"bytes={done}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and done:  # the part is longer than the file: start again
            part.unlink()
            return _fetch_once(url, part, timeout, transfer)
        raise
    with resp:
        if done and resp.status != 206:  # the server ignored the range: start again
            done = 0
        length = resp.headers.get("Content-Length")
        total = done + int(length) if length is not None else None
        transfer.start(part.name[: -len(".part")], total, done)
        with open(part, "ab" if done else "wb") as fh:
            while chunk := resp.read(_CHUNK):
                fh.write(chunk)
                transfer.advance(len(chunk))
    return total


def _fetch_url(url: str, dest: Path, prefix: str, transfer: Transfer) -> str:
    """Download `url` to `dest` through ``dest.part`` (resumed), check the sha256 prefix, rename."""
    timeout = download_timeout()
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file() and _weights.sha256_file(dest).startswith(prefix):
        return _weights.sha256_file(dest)  # already in place and verified
    for attempt in range(1, _URL_TRIES + 1):
        interrupted = False
        try:
            total = _fetch_once(url, part, timeout, transfer)
        except urllib.error.HTTPError as exc:
            raise _url_error(url, exc, timeout) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError, time-outs, resets, short reads
            if not part.exists() or part.stat().st_size == 0:
                raise _url_error(url, exc, timeout) from None
            total, interrupted = None, True
            log.warning("download of %s interrupted (%s); resuming", url, exc)
        size = part.stat().st_size if part.exists() else 0
        if size == total or (total is None and not interrupted):  # whole, or no length to compare with
            break
        if total is not None and size > total:
            part.unlink()
        if attempt == _URL_TRIES:
            raise WeightsError(
                f"{url}: the download stopped at {size} bytes after {_URL_TRIES} tries; it is kept as "
                f"{part} and the same command resumes it."
            )
        time.sleep(0.2 * attempt)
    digest = _weights.sha256_file(part)
    if not digest.startswith(prefix):
        part.unlink()
        raise _mismatch(dest.name, url, prefix + "…", digest)
    os.replace(part, dest)
    return digest


def _pull_url(src: WeightsSource, transfer: Transfer) -> PullResult:
    folder = default_target(src)
    digests: dict[str, str] = {}
    for name in src.files:
        prefix = _weights.expected_digest_prefix(name)
        if not prefix:
            raise WeightsError(f"The sources table lists {name!r} for {src.name} without a sha256 prefix in its name.")
        digests[name] = _fetch_url(src.base_url + name, folder / name, prefix, transfer)
    _drop_stale(folder, set(digests))
    _write_manifest(folder, src, src.revision, digests, src.base_url)
    return PullResult(src.name, folder, src.revision, digests, sum((folder / n).stat().st_size for n in digests))


# --- Hugging Face repositories (MERT) -----------------------------------------------------------
def _hf_error(src: WeightsSource, exc: BaseException, endpoint: str, timeout: float, revision: str) -> WeightsError:
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and len(chain) < 8:
        chain.append(e)
        e = e.__cause__ or e.__context__
    where = f"{endpoint}/{src.repo_id}"
    for e in chain:
        if isinstance(e, RevisionNotFoundError):
            return WeightsError(f"{where}: revision {revision!r} not found (HTTP 404); check --revision.")
        if isinstance(e, RepositoryNotFoundError):
            return WeightsError(f"{where}: repository not found (HTTP 404); check HF_ENDPOINT and the sources table.")
        if isinstance(e, HfHubHTTPError) and e.response is not None:
            url = e.response.request.url if e.response.request is not None else where
            return WeightsError(f"{url}: HTTP {e.response.status_code}; check HF_ENDPOINT and --revision, or try later.")
        if isinstance(e, httpx2.TimeoutException) or isinstance(e, TimeoutError):
            return WeightsError(f"{endpoint}: no answer within {timeout:g} s (HF_HUB_DOWNLOAD_TIMEOUT); "
                                "try again or raise it.")
        if isinstance(e, (httpx2.ConnectError, ConnectionError)):
            return WeightsError(f"{endpoint}: cannot connect ({e}); check the network, a proxy or HF_ENDPOINT.")
    return WeightsError(f"{where}: download failed ({type(exc).__name__}: {exc}).")


def _tqdm_for(transfer: Transfer, name: str):
    """A tqdm class that forwards huggingface_hub's byte counts for file `name` to `transfer`."""
    from tqdm.auto import tqdm

    class _Forward(tqdm):  # type: ignore[misc]
        def __init__(self, *args, **kwargs):
            transfer.start(name, kwargs.get("total"), int(kwargs.get("initial") or 0))
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            if n:
                transfer.advance(int(n))
            return None

    return _Forward


def _expected_digests(info, weights_name: str) -> dict[str, tuple[str, str]]:
    """file -> (kind, digest) as the hub reports them: ``sha256`` of LFS files, else the git blob id."""
    out: dict[str, tuple[str, str]] = {}
    for s in info.siblings or []:
        if s.rfilename not in ("config.json", weights_name):
            continue
        if s.lfs is not None and s.lfs.sha256:
            out[s.rfilename] = ("sha256", s.lfs.sha256.lower())
        elif s.blob_id:
            out[s.rfilename] = ("git-sha1", s.blob_id.lower())
    return out


def _verify_hf_file(path: Path, name: str, expected: tuple[str, str], origin: str) -> str:
    kind, want = expected
    digest = _weights.sha256_file(path)
    actual = digest if kind == "sha256" else _weights.git_blob_sha1(path)
    if actual != want:
        target = path.resolve()
        path.unlink(missing_ok=True)
        if target != path:
            target.unlink(missing_ok=True)  # the cache blob the pointer led to
        shown = want if kind == "sha256" else f"{want} (git blob id)"
        raise _mismatch(name, origin, shown, actual)
    return digest


def _already_pulled(name: str, folder: Path, commit: str, expected: dict[str, tuple[str, str]]) -> PullResult | None:
    """The folder's earlier pull of this very commit, when its manifest and files still match."""
    manifest = _weights.read_manifest(folder) if folder.is_dir() else None
    if not manifest or manifest.get("revision") != commit or set(manifest["files"]) != set(expected):
        return None
    try:
        digests = {n: _weights.check_file_digest(folder / n) for n in expected}
    except WeightsError:
        return None
    if any(kind == "sha256" and digests[n] != want for n, (kind, want) in expected.items()):
        return None
    size = sum((folder / n).stat().st_size for n in digests)
    return PullResult(name, folder, commit, digests, size)


def _pull_hf(src: WeightsSource, revision: str, transfer: Transfer) -> PullResult:
    try:
        import httpx2  # noqa: F401  (huggingface_hub's HTTP client)
        from huggingface_hub import HfApi, hf_hub_download
    except ImportError:
        raise WeightsError(f"Pulling {src.name} needs huggingface_hub: pip install 'soundalike[mert]' -c constraints.txt") from None

    endpoint = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
    timeout = download_timeout()
    origin = f"{endpoint}/{src.repo_id}"
    target_root = _weights.weights_dir()
    try:
        info = HfApi(endpoint=endpoint).model_info(src.repo_id, revision=revision, files_metadata=True, timeout=timeout)
        names = {s.rfilename for s in info.siblings or []}
        weights_name = next((f for f in MERT_WEIGHT_FILES if f in names), None)
        if weights_name is None or "config.json" not in names:
            raise WeightsError(f"{origin} at {revision}: needs config.json and one of {', '.join(MERT_WEIGHT_FILES)}; "
                               f"it holds {', '.join(sorted(names)) or 'no files'}.")
        expected = _expected_digests(info, weights_name)
        if expected.get(weights_name, ("", ""))[0] != "sha256":
            raise WeightsError(f"{origin} at {revision}: the hub reports no sha256 for {weights_name}, so it cannot "
                               "be verified; refusing it.")
        commit = str(info.sha)
        if target_root is not None:
            done = _already_pulled(src.name, target_root / src.folder, commit, expected)
            if done is not None:
                return done
        common = dict(repo_id=src.repo_id, revision=commit if target_root is not None else revision,
                      endpoint=endpoint)
        staging = target_root / ".partial" / src.folder if target_root is not None else None
        paths: dict[str, Path] = {}
        for name in (weights_name, "config.json"):
            bar = _tqdm_for(transfer, f"{src.folder}/{name}")
            if staging is not None:
                paths[name] = Path(hf_hub_download(filename=name, local_dir=staging, tqdm_class=bar, **common))
            else:
                paths[name] = Path(hf_hub_download(filename=name, cache_dir=_weights.hf_hub_cache(), tqdm_class=bar,
                                                   **common))
    except WeightsError:
        raise
    except Exception as exc:  # network and hub errors -> one line
        raise _hf_error(src, exc, endpoint, timeout, revision) from None

    digests: dict[str, str] = {}
    for name, path in paths.items():
        if staging is None and path.parent.name != commit:
            raise WeightsError(f"{origin}: revision {revision!r} moved to {path.parent.name} during the pull; run it again.")
        if name in expected:
            digests[name] = _verify_hf_file(path, name, expected[name], origin)
        else:
            digests[name] = _weights.sha256_file(path)
    if staging is None:
        folder = paths[weights_name].parent
    else:
        folder = target_root / src.folder
        folder.mkdir(parents=True, exist_ok=True)
        for name, path in paths.items():
            os.replace(path, folder / name)
        _drop_stale(folder, set(digests))
        _write_manifest(folder, src, commit, digests, origin)
    size = sum((folder / n).resolve().stat().st_size for n in digests)
    return PullResult(src.name, folder, commit, digests, size)


def pull(
    name: str,
    *,
    revision: str | None = None,
    accept_licence: bool = False,
    confirm: Callable[[WeightsSource], bool] | None = None,
    transfer: Transfer | None = None,
) -> PullResult:
    """Fetch, verify and put in place the weights of backend `name`.

    Parameters
    ----------
    name : str              a ``SOURCES`` entry (``mert-v1-95m``, ``vggish``, ...)
    revision : str, optional
        Hub branch, tag or commit (MERT); default ``main``. Not accepted for release files.
    accept_licence : bool   accept a non-commercial licence without asking
    confirm : callable, optional
        Asked (with the source) when the licence is non-commercial and not accepted yet.
    transfer : Transfer, optional
        Receives byte counts (progress bars).

    Raises
    ------
    LicenceRefused
        Before any request, when a non-commercial licence is not accepted.
    WeightsError
        One line: a network failure, a 404, a time-out or a digest mismatch (nothing registered).
    """
    src = source_for(name)
    if src.kind == "pip":
        raise ParameterError(f"{name}'s weights ship in a Python package: {src.pip_install}")
    if revision is not None and src.kind != "hf":
        raise ParameterError(f"--revision applies to Hugging Face repositories; {name} is release {src.revision}.")
    check_licence(src, accept_licence, confirm)
    transfer = transfer or _NoTransfer()
    if src.kind == "hf":
        try:
            return _pull_hf(src, revision or src.revision, transfer)
        finally:  # the staging folder never outlives a pull (huggingface_hub keeps no partial file either)
            root = _weights.weights_dir()
            if root is not None:
                shutil.rmtree(root / ".partial" / src.folder, ignore_errors=True)
    return _pull_url(src, transfer)


# --- import --------------------------------------------------------------------------------------
def _guess_source(path: Path) -> WeightsSource:
    """Which table entry a file or folder holds (by file names, the folder's name, or MERT's config)."""
    from ._sources import SOURCES

    names = {path.name} if path.is_file() else {p.name for p in path.iterdir()}
    if any(n.startswith("vggish") and n.endswith(".pth") for n in names):
        return source_for("vggish")
    folder = path if path.is_dir() else path.parent
    if (folder / "config.json").is_file():
        where = f"{folder}/{folder.resolve()}".lower()
        for src in SOURCES.values():
            if src.kind == "hf" and src.folder.lower() in where:
                return src
        try:
            cfg = json.loads((folder / "config.json").read_text())
        except (OSError, ValueError) as exc:
            raise WeightsError(f"{folder / 'config.json'} cannot be read ({exc}).") from None
        shape = (cfg.get("hidden_size"), cfg.get("num_hidden_layers"))
        if shape == (768, 12):
            return source_for("mert-v1-95m")
        if shape == (1024, 24):
            return source_for("mert-v1-330m")
    raise ParameterError(f"Cannot tell which backend {str(path)!r} belongs to; pass --name (e.g. --name mert-v1-95m).")


def _import_files(src: WeightsSource, path: Path) -> dict[str, Path]:
    folder = path if path.is_dir() else path.parent
    if src.kind == "url":
        from .vggish import find_vggish_weights

        model, pca = find_vggish_weights(path)
        if model is None or pca is None:
            raise WeightsError(f"{str(path)!r} lacks the {src.name} release files ({', '.join(src.files)}); "
                               "import a folder with both.")
        return {model.name: model, pca.name: pca}
    elif src.kind == "hf":
        weights = next((folder / f for f in MERT_WEIGHT_FILES if (folder / f).is_file()), None)
        if path.is_file() and path.name in MERT_WEIGHT_FILES:
            weights = path
        files = {"config.json": folder / "config.json", **({weights.name: weights} if weights else {})}
        if weights is None:
            raise WeightsError(f"{str(folder)!r} holds no {' or '.join(MERT_WEIGHT_FILES)}; import the snapshot folder.")
    else:
        raise ParameterError(f"{src.name}'s weights ship in a Python package: {src.pip_install}")
    missing = [n for n, p in files.items() if not p.is_file()]
    if missing:
        raise WeightsError(f"{str(folder)!r} lacks {', '.join(missing)} for {src.name}; import a folder with every file.")
    return files


def import_weights(path: str | os.PathLike[str], *, name: str | None = None, link: bool = False) -> PullResult:
    """Verify weights already on disk (a snapshot folder or a file) and put them in place.

    Every digest the files promise is checked first (the sha256 prefix in a release file's name,
    a hub cache blob name, a manifest beside them); a mismatch refuses the import and copies
    nothing. Files are copied (or symlinked with `link`) into ``$SOUNDALIKE_WEIGHTS_DIR/<folder>``
    (VGGish without it: torch hub's cache), each through a temporary name, the manifest last.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise WeightsError(f"{str(p)!r} does not exist; give the downloaded snapshot folder or file.")
    src = source_for(name) if name else _guess_source(p)
    files = _import_files(src, p)
    digests = {n: _weights.check_file_digest(f) for n, f in files.items()}  # raises on a mismatch
    if src.kind == "hf" and _weights.weights_dir() is None:
        raise WeightsError(f"Set {_weights.WEIGHTS_ENV} to the folder to import into ({src.name} goes to "
                           f"${_weights.WEIGHTS_ENV}/{src.folder}/).")
    folder = default_target(src)
    folder.mkdir(parents=True, exist_ok=True)
    for n, f in files.items():
        dest = folder / n
        if dest.resolve() == f.resolve():
            continue
        tmp = folder / (n + ".importing")
        tmp.unlink(missing_ok=True)
        if link:
            tmp.symlink_to(f.resolve())
        else:
            shutil.copyfile(f, tmp)
            if _weights.sha256_file(tmp) != digests[n]:
                tmp.unlink()
                raise WeightsError(f"Copying {f} to {folder} changed its bytes; check the disk, nothing was imported.")
        os.replace(tmp, dest)
    revision = _revision_from(files)
    _drop_stale(folder, set(digests))
    _write_manifest(folder, src, revision, digests, f"import {p.resolve()}")
    return PullResult(src.name, folder, revision, digests, sum((folder / n).resolve().stat().st_size for n in digests))


def _revision_from(files: dict[str, Path]) -> str:
    """An imported snapshot's revision: its manifest's, its hub commit (folder name), else 'imported'."""
    folder = next(iter(files.values())).parent
    manifest = _weights.read_manifest(folder)
    if manifest and manifest.get("revision"):
        return str(manifest["revision"])
    if folder.parent.name == "snapshots":
        return folder.name
    return "imported"
