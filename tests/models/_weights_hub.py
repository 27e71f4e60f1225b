"""A local stand-in for the Hugging Face hub and a release host, started by the tests.

It answers what huggingface_hub 2.x asks (read from its source): ``GET /api/models/{repo}/revision/{rev}
?blobs=true`` (commit ``sha`` and ``siblings`` with ``size``, ``blobId`` and ``lfs.sha256``),
``HEAD /{repo}/resolve/{rev}/{file}`` with ``X-Repo-Commit``, ``ETag`` (the git blob id of small
files) and, for LFS files, a 302 to another host ("the CDN") carrying ``X-Linked-Etag`` (the
sha256) and ``X-Linked-Size``; ``GET`` with ``Range`` support (206 + ``Content-Range``). Release
files are served at ``/releases/v0.1/{file}``.

Faults, set per test: ``corrupt`` (serve other bytes than the digests promise), ``cut_once``
(send only the first N bytes of a body once, then close), ``stall`` (sleep before answering a
path prefix), ``missing`` (404). Every request is logged as ``(method, path, range)``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class HubFile:
    path: Path
    lfs: bool

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    @property
    def sha256(self) -> str:
        h = hashlib.sha256()
        with open(self.path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
        return h.hexdigest()


@dataclass
class FakeHub:
    port: int = 0
    repos: dict[str, dict[str, HubFile]] = field(default_factory=dict)
    releases: dict[str, Path] = field(default_factory=dict)
    corrupt: set[str] = field(default_factory=set)  # file names
    cut_once: dict[str, int] = field(default_factory=dict)  # file name -> bytes sent before closing
    stall: dict[str, float] = field(default_factory=dict)  # path prefix -> seconds
    missing: set[str] = field(default_factory=set)  # path prefixes answered 404
    log: list[tuple[str, str, str | None]] = field(default_factory=list)
    _digests: dict[Path, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def release_base(self) -> str:
        return f"{self.endpoint}/releases/v0.1/"

    def sha256(self, f: HubFile) -> str:
        if f.path not in self._digests:
            self._digests[f.path] = f.sha256
        return self._digests[f.path]

    def downloads(self) -> list[tuple[str, str, str | None]]:
        return [r for r in self.log if r[0] == "GET"]


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _route(self, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.log.append((self.command, path, self.headers.get("Range")))
            for prefix, seconds in hub.stall.items():
                if path.startswith(prefix):
                    time.sleep(seconds)
            if any(path.startswith(p) for p in hub.missing):
                return self._plain(404, b"Not Found", head, {"X-Error-Code": "EntryNotFound"} if "/resolve/" in path else {})
            parts = path.strip("/").split("/")
            if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "revision":
                return self._info("/".join(parts[2:4]), parts[5], head)
            if len(parts) >= 5 and parts[2] == "resolve":
                return self._resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]), head)
            if parts[:1] == ["cdn"] and len(parts) == 4:
                repo = hub.repos.get("/".join(parts[1:3]), {})
                f = next((f for f in repo.values() if hub.sha256(f) == parts[3]), None)
                if f is not None:
                    return self._body(f.path.name, f, head, {})
            if parts[:2] == ["releases", "v0.1"] and len(parts) == 3 and parts[2] in hub.releases:
                return self._body(parts[2], HubFile(hub.releases[parts[2]], False), head, {})
            return self._plain(404, b"Not Found", head, {})

        def do_GET(self) -> None:  # noqa: N802
            self._route(head=False)

        def do_HEAD(self) -> None:  # noqa: N802
            self._route(head=True)

        def _plain(self, status: int, body: bytes, head: bool, headers: dict[str, str]) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _info(self, repo_id: str, rev: str, head: bool) -> None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._plain(404, b"Repository not found", head, {"X-Error-Code": "RepoNotFound"})
            if rev not in ("main", COMMIT):
                return self._plain(404, b"Revision not found", head, {"X-Error-Code": "RevisionNotFound"})
            siblings = []
            for name, f in repo.items():
                entry = {"rfilename": name, "size": f.size}
                if f.lfs:
                    entry.update(blobId=git_blob_id(b"lfs pointer " + name.encode()),
                                 lfs={"size": f.size, "sha256": hub.sha256(f), "pointerSize": 134})
                else:
                    entry["blobId"] = git_blob_id(f.data)
                siblings.append(entry)
            doc = {"id": repo_id, "modelId": repo_id, "sha": COMMIT, "private": False, "siblings": siblings}
            self._plain(200, json.dumps(doc).encode(), head, {"Content-Type": "application/json"})

        def _resolve(self, repo_id: str, rev: str, name: str, head: bool) -> None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._plain(404, b"Repository not found", head, {"X-Error-Code": "RepoNotFound"})
            if rev not in ("main", COMMIT):
                return self._plain(404, b"Revision not found", head, {"X-Error-Code": "RevisionNotFound"})
            f = repo.get(name)
            if f is None:
                return self._plain(404, b"Entry not found", head, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT})
            if f.lfs:  # the hub answers large files with a redirect to its CDN, metadata on the redirect
                cdn = f"http://localhost:{hub.port}/cdn/{repo_id}/{hub.sha256(f)}"
                return self._plain(302, b"", head, {"Location": cdn, "X-Repo-Commit": COMMIT,
                                                     "X-Linked-Etag": f'"{hub.sha256(f)}"', "X-Linked-Size": str(f.size),
                                                     "ETag": f'"{git_blob_id(b"pointer")}"'})
            extra = {"X-Repo-Commit": COMMIT, "ETag": f'"{git_blob_id(f.data)}"'}
            self._body(name, f, head, extra)

        def _body(self, name: str, f: HubFile, head: bool, extra: dict[str, str]) -> None:
            data = f.data
            if name in hub.corrupt:
                data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
            status = 206 if start else 200
            self.send_response(status)
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(data) - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if head:
                return
            body = data[start:]
            cut = hub.cut_once.pop(name, None)
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            view = memoryview(body)
            for i in range(0, len(body), 1 << 20):
                self.wfile.write(view[i : i + (1 << 20)])

    return Handler


def start(state: FakeHub) -> ThreadingHTTPServer:
    """Serve `state` on 127.0.0.1 (a free port) in a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
