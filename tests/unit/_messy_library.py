"""A library laid out and tagged the way people keep music (issue 24), generated for tests.

``Artist/Album/NN Title.ext`` with untagged numbered files, a "Various Artists" compilation,
a soundtrack whose three composers share one album artist, ``feat.``/``ft.`` credits, band
names with ``/`` and ``&``, duplicate titles and Unicode names. Audio: 3 s of distinct tones
written with soundfile (FLAC, Ogg Vorbis, MP3); tags written with mutagen.

``EXPECTED`` is what the ``auto`` rule must give: ``relpath -> (artist, credit, title, source)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050

# relpath, tags (None = untagged)
FILES: list[tuple[str, dict | None]] = [
    ("Askyel/Pilot/03 Eureka.flac", None),
    ("Askyel/Pilot/04 - Dvaered Theme.flac", None),
    ("Björk/Post/1-02 Hyperballad.ogg", None),
    ("Nova/Singles/Nova - Starlight.flac", None),
    ("Various Artists/Summer Hits/01 Sunrise.flac",
     {"albumartist": "Various Artists", "artist": "Nova", "title": "Sunrise", "album": "Summer Hits",
      "compilation": "1"}),
    ("Various Artists/Summer Hits/02 Tide.flac",
     {"albumartist": "Various Artists", "artist": "Kestrel ft. Nova", "artists": ["Kestrel", "Nova"], "title": "Tide",
      "album": "Summer Hits", "compilation": "1"}),
    ("Various Artists/Summer Hits/03 Intro.flac",
     {"albumartist": "Various Artists", "artist": "Sigur Rós", "title": "Intro", "album": "Summer Hits",
      "compilation": "1"}),
    ("Wesnoth Project/Wesnoth OST/01 Battle Epic.ogg",
     {"albumartist": "Wesnoth Project", "artist": "Doug Kaufman", "title": "Battle Epic", "album": "Wesnoth OST"}),
    ("Wesnoth Project/Wesnoth OST/02 Heroes Rite.ogg",
     {"albumartist": "Wesnoth Project", "artist": "Doug Kaufman", "title": "Heroes Rite", "album": "Wesnoth OST"}),
    ("Wesnoth Project/Wesnoth OST/03 Legends of the North.ogg",
     {"albumartist": "Wesnoth Project", "artist": "Mattias Westlund", "title": "Legends of the North",
      "album": "Wesnoth OST"}),
    ("Wesnoth Project/Wesnoth OST/04 Elvish Theme.ogg",
     {"albumartist": "Wesnoth Project", "artist": "Jeremy Nicoll", "title": "Elvish Theme", "album": "Wesnoth OST"}),
    ("Daft Punk/Random Access/01 Get Lucky.mp3",
     {"albumartist": "Daft Punk", "artist": "Daft Punk feat. Pharrell Williams", "title": "Get Lucky",
      "album": "Random Access"}),
    ("Daft Punk/Random Access/02 Contact.flac",
     {"albumartist": "Daft Punk", "artist": "Daft Punk", "title": "Contact", "album": "Random Access"}),
    ("AC_DC/Highway/01 Intro.flac", {"albumartist": "AC/DC", "artist": "AC/DC", "title": "Intro", "album": "Highway"}),
    ("AC_DC/Highway/02 T.N.T..flac", {"albumartist": "AC/DC", "artist": "AC/DC", "title": "T.N.T.", "album": "Highway"}),
    ("Simon & Garfunkel/Bookends/01 Intro.ogg", {"artist": "Simon & Garfunkel", "title": "Intro", "album": "Bookends"}),
    ("Sigur Rós/Takk/02 Hoppípolla.ogg", {"artist": "Sigur Rós", "title": "Hoppípolla", "album": "Takk"}),
]

EXPECTED: dict[str, tuple[str, str, str, str]] = {
    "Askyel/Pilot/03 Eureka.flac": ("Askyel", "Askyel", "Eureka", "folder"),
    "Askyel/Pilot/04 - Dvaered Theme.flac": ("Askyel", "Askyel", "Dvaered Theme", "folder"),
    "Björk/Post/1-02 Hyperballad.ogg": ("Björk", "Björk", "Hyperballad", "folder"),
    "Nova/Singles/Nova - Starlight.flac": ("Nova", "Nova", "Starlight", "folder"),
    "Various Artists/Summer Hits/01 Sunrise.flac": ("Nova", "Nova", "Sunrise", "mixed-album"),
    "Various Artists/Summer Hits/02 Tide.flac": ("Kestrel", "Kestrel ft. Nova", "Tide", "mixed-album"),
    "Various Artists/Summer Hits/03 Intro.flac": ("Sigur Rós", "Sigur Rós", "Intro", "mixed-album"),
    "Wesnoth Project/Wesnoth OST/01 Battle Epic.ogg": ("Doug Kaufman", "Doug Kaufman", "Battle Epic", "mixed-album"),
    "Wesnoth Project/Wesnoth OST/02 Heroes Rite.ogg": ("Doug Kaufman", "Doug Kaufman", "Heroes Rite", "mixed-album"),
    "Wesnoth Project/Wesnoth OST/03 Legends of the North.ogg": ("Mattias Westlund", "Mattias Westlund",
                                                                "Legends of the North", "mixed-album"),
    "Wesnoth Project/Wesnoth OST/04 Elvish Theme.ogg": ("Jeremy Nicoll", "Jeremy Nicoll", "Elvish Theme",
                                                        "mixed-album"),
    "Daft Punk/Random Access/01 Get Lucky.mp3": ("Daft Punk", "Daft Punk feat. Pharrell Williams", "Get Lucky",
                                                 "albumartist"),
    "Daft Punk/Random Access/02 Contact.flac": ("Daft Punk", "Daft Punk", "Contact", "albumartist"),
    "AC_DC/Highway/01 Intro.flac": ("AC/DC", "AC/DC", "Intro", "albumartist"),
    "AC_DC/Highway/02 T.N.T..flac": ("AC/DC", "AC/DC", "T.N.T.", "albumartist"),
    "Simon & Garfunkel/Bookends/01 Intro.ogg": ("Simon & Garfunkel", "Simon & Garfunkel", "Intro", "artist"),
    "Sigur Rós/Takk/02 Hoppípolla.ogg": ("Sigur Rós", "Sigur Rós", "Hoppípolla", "artist"),
}

#: tracks per artist rule for each --artist-from (the figures of the issue's closing note)
COUNTS = {
    "auto": {"folder": 4, "mixed-album": 7, "albumartist": 4, "artist": 2},
    "track": {"folder": 4, "artist": 13},
    "album": {"folder": 4, "albumartist": 11, "artist": 2},
}
ARTISTS = {
    "auto": {"Askyel", "Björk", "Nova", "Kestrel", "Sigur Rós", "Doug Kaufman", "Mattias Westlund", "Jeremy Nicoll",
             "Daft Punk", "AC/DC", "Simon & Garfunkel"},
    "album": {"Askyel", "Björk", "Nova", "Various Artists", "Wesnoth Project", "Daft Punk", "AC/DC",
              "Simon & Garfunkel", "Sigur Rós"},
}


def _tag(path: Path, tags: dict) -> None:
    if path.suffix == ".mp3":
        from mutagen.easyid3 import EasyID3
        from mutagen.id3 import ID3

        ID3().save(str(path))  # an empty ID3 header first: the file has none yet
        f = EasyID3(str(path))
        for k, v in tags.items():
            if k in ("artists", "compilation"):
                continue
            f[k] = v
        f.save()
        return
    import mutagen

    f = mutagen.File(str(path))
    if f.tags is None:
        f.add_tags()
    for k, v in tags.items():
        f[k] = v if isinstance(v, list) else [v]
    f.save()


def build(root: Path) -> Path:
    """Write the messy library under `root`; returns `root`."""
    t = np.arange(int(3.0 * SR)) / SR
    for i, (rel, tags) in enumerate(FILES):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        f0 = 110.0 * 2 ** (i / 7)
        y = (0.2 * np.sin(2 * np.pi * f0 * t) + 0.1 * np.sin(2 * np.pi * 2.5 * f0 * t)).astype(np.float32)
        fmt = {".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}[p.suffix]
        sf.write(str(p), y, SR, format=fmt)
        if tags:
            _tag(p, tags)
    return root
