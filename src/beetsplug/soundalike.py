"""soundalike for beets: analyse your beets library, then ask what sounds alike.

Enable it in beets' config (``plugins: soundalike``) and optionally set::

    soundalike:
      db: ~/.local/share/soundalike/library.db   # default: $SOUNDALIKE_DB, else soundalike's default
      backend: musicnn-msd,descriptors            # analysis models (default: those of `soundalike run`)
      jobs: 4                                     # worker processes (default: as `soundalike run`)

Commands:

* ``beet soundalike [QUERY] [-b BACKENDS] [-j JOBS]`` analyses the matched items into the
  soundalike store, from beets' own paths and tags (artist, title, album, genre, MusicBrainz
  artist and recording ids — the recording id becomes the track's manifest id); no second scan
  of the music folder. It is ``soundalike run``'s analysis (the same entry point, default
  backends, worker processes and progress on stderr), so the same files get the same vectors.
* ``beet similar QUERY [-n N] [-o FILE.m3u8]`` lists the items that sound like the matched
  ones (a playlist: seeds left out, artists spaced, no recording twice), or writes an m3u8
  (``-o/--out``: beets already owns ``-p``).
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

from beets import ui
from beets.plugins import BeetsPlugin
from beets.util import syspath

__all__ = ["SoundalikePlugin"]


def _path(item) -> str:
    return os.path.normpath(os.fsdecode(syspath(item.path)))


def _genres(item) -> str:
    """``;``-separated genres (beets >= 2.11 has a ``genres`` list, older beets one ``genre``)."""
    g = item.get("genres", None) or item.get("genre", None) or ""
    return ";".join(x for x in g if x) if isinstance(g, (list, tuple)) else str(g)


class SoundalikePlugin(BeetsPlugin):
    """``beet soundalike`` (analyse) and ``beet similar`` (ask)."""

    def __init__(self) -> None:
        super().__init__()
        self.config.add({"db": None, "backend": None, "jobs": None, "artist_gap": 3})

    # --- settings ------------------------------------------------------------------------------
    def _db(self, opts) -> Path:
        from soundalike.store import default_db_path

        raw = getattr(opts, "db", None) or self.config["db"].get()
        return Path(os.path.expanduser(raw)) if raw else default_db_path()

    def _items(self, lib, args: list[str], command: str) -> list:
        items = list(lib.items(args))
        if not items:
            query = " ".join(args) or "(everything)"
            raise ui.UserError(f"the beets query {query!r} matches no items; check it with `beet ls {' '.join(args)}`, "
                               f"then run `beet {command}` again.")
        return items

    # --- commands ------------------------------------------------------------------------------
    def commands(self) -> list:
        analyse = ui.Subcommand("soundalike", help="analyse matched items into the soundalike store")
        analyse.parser.add_option("-b", "--backend", help="analysis models, comma-separated (default: config "
                                  "soundalike.backend, else those of `soundalike run`)")
        analyse.parser.add_option("-j", "--jobs", type="int", default=None,
                                  help="worker processes (default: config soundalike.jobs, else as `soundalike run`)")
        analyse.parser.add_option("--db", help="soundalike store (default: config soundalike.db or $SOUNDALIKE_DB)")
        analyse.func = self._analyse
        similar = ui.Subcommand("similar", help="items that sound like the matched ones")
        similar.parser.add_option("-n", type="int", default=20, help="how many items (default 20)")
        similar.parser.add_option("-o", "--out", help="write an m3u8 playlist to this file")
        similar.parser.add_option("--artist-gap", type="int", default=None, help="no artist repeats within N items")
        similar.parser.add_option("--db", help="soundalike store (default: config soundalike.db or $SOUNDALIKE_DB)")
        similar.func = self._similar
        return [analyse, similar]

    def _backends(self, opts) -> list[str]:
        from soundalike.analysis import default_backend_names

        raw = opts.backend or self.config["backend"].get()
        if raw:
            names = [n.strip() for n in (raw if isinstance(raw, list) else str(raw).split(",")) if n.strip()]
        else:
            names = default_backend_names(note=lambda _n, why: self._log.warning("{0}", why))
        if not names:
            raise ui.UserError("no analysis model is ready; see `soundalike backends`.")
        return names

    def _analyse(self, lib, opts, args) -> None:
        from soundalike.analysis import Folder, analyse, executor_for, fill_taggrams, start_workers
        from soundalike.audio import WindowPolicy
        from soundalike.backends import load_backend
        from soundalike.cli._common import progress_bar
        from soundalike.cli._early import default_jobs
        from soundalike.errors import SoundalikeError
        from soundalike.query import refresh_calibrators
        from soundalike.store import Store

        items = self._items(lib, args, "soundalike")
        names = self._backends(opts)
        jobs = opts.jobs or self.config["jobs"].get() or default_jobs()
        db = self._db(opts)
        db.parent.mkdir(parents=True, exist_ok=True)
        policy = WindowPolicy()
        with tempfile.TemporaryDirectory(prefix="beets-soundalike-") as tmp:
            manifest = Path(tmp) / "manifest.csv"
            with open(manifest, "w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, fieldnames=["path", "artist", "title", "album", "genre", "artist_mbid", "track_id"])
                w.writeheader()
                for it in items:
                    w.writerow({"path": _path(it), "artist": it.albumartist or it.artist or "[Unknown Artist]",
                                "title": it.title, "album": it.album, "genre": _genres(it),
                                "artist_mbid": it.mb_albumartistid or it.mb_artistid,
                                "track_id": it.mb_trackid})  # MusicBrainz recording id -> manifest id
            try:
                workers = start_workers(names, policy, jobs)  # start-up overlaps the loading below, as in `run`
                models = [load_backend(n) for n in names]
                executor = executor_for(models, jobs, started=workers)
                try:
                    with Store(db) as store:
                        run_id = store.start_run(["beet", "soundalike", *args])
                        with progress_bar() as prog:
                            out = analyse(store, Folder(tmp, manifest), models, policy=policy, executor=executor,
                                          run_id=run_id, progress=prog)
                            if "musicnn-msd" in names:
                                fill_taggrams(store, policy=policy, executor=executor, run_id=run_id, progress=prog)
                        store.finish_run(run_id)
                        refresh_calibrators(store)
                finally:
                    executor.close()
            except SoundalikeError as exc:
                raise ui.UserError(str(exc)) from None
        summary, done = out.ingest, out.embed
        failed = summary.n_failed + done.n_failed
        ui.print_(f"soundalike: {len(items)} items in {db} ({', '.join(names)}); "
                  f"{done.done} analysed now, {done.cached} already analysed, {failed} failed")
        for s in (summary, done):
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(s.failed.items()))
            ui.print_(f"{s.stage}: {s.done} done, {s.cached} cached, {s.n_failed} failed" + (f" ({kinds})" if kinds else ""))
        for f in (summary.failures + done.failures)[:10]:
            self._log.warning("{0}: {1} ({2})", f.path, f.message, f.kind)

    def _similar(self, lib, opts, args) -> None:
        from soundalike.errors import SoundalikeError
        from soundalike.playlist import make_playlist, write_m3u8
        from soundalike.store import Store

        items = self._items(lib, args, "similar QUERY")
        db = self._db(opts)
        if not db.is_file():
            raise ui.UserError(f"no soundalike store at {db}; run `beet soundalike` first.")
        gap = opts.artist_gap if opts.artist_gap is not None else self.config["artist_gap"].get(int)
        try:
            with Store(db, readonly=True) as store:
                stored = store.track_ids_by_path()
                seeds = [stored[p] for p in map(_path, items) if p in stored]
                if not seeds:
                    raise ui.UserError(f"none of the {len(items)} matched items is analysed; run "
                                       f"`beet soundalike {' '.join(args)}` first.")
                pl = make_playlist(store, seeds, n=opts.n, artist_gap=gap)
            if opts.out:
                write_m3u8(pl, opts.out)
        except SoundalikeError as exc:
            raise ui.UserError(str(exc)) from None
        by_path = {_path(it): it for it in lib.items()}
        for t in pl.tracks:
            it = by_path.get(os.path.normpath(t.path))
            ui.print_(format(it) if it is not None else f"{t.artist} - {t.title or Path(t.path).stem} ({t.path})")
        if opts.out:
            self._log.info("wrote {0} items to {1}", len(pl.tracks), opts.out)
