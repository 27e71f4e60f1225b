"""Build the bundled demo library (demo/) from ../shared/data/music.

Run once by a developer; the result is committed. Picks 4 clips of each chosen artist (their
first four by path, the 28.4 s Bach clip included), copies them, writes demo/manifest.csv
(keys: path, artist, title, genre, track_id) and demo/CREDITS.md with author, title, source
package and licence of each clip. OpenClonk clips are never chosen (licence not itemised).
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

ARTISTS = [
    "Askyel", "Maxstack (Max McCracken)", "Muldjord", "Obsidian Shell", "Doug Kaufman",
    "Mattias Westlund", "Johann Sebastian Bach", "Giovanni Pierluigi da Palestrina",
    "0zone0ne", "Marek 'Wansti' Moeckel",
]
PER_ARTIST = 4


def main(src: Path, dst: Path) -> None:
    rows = list(csv.DictReader((src / "manifest.csv").open(encoding="utf-8")))
    chosen = []
    for artist in ARTISTS:
        mine = sorted((r for r in rows if r["artist"] == artist), key=lambda r: r["path"])
        bach_short = [r for r in mine if float(r["duration_s"]) < 29.0]
        pick = (bach_short[:1] + [r for r in mine if r not in bach_short])[:PER_ARTIST]
        assert all("openclonk" not in r["source_package"] for r in pick)
        chosen.extend(pick)
    music = dst / "music"
    if music.exists():
        shutil.rmtree(music)
    for r in chosen:
        out = music / r["path"]
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / r["path"], out)
    with (dst / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "artist", "title", "genre", "track_id"])
        for r in chosen:
            w.writerow(["music/" + r["path"], r["artist"], r["title"], r["genre"], r["track_id"]])
    lines = [
        "# Credits for the demo library",
        "",
        "30 s mono Ogg Vorbis clips cut from the middle of each track (22.05 kHz), taken from",
        "soundalike's development set. Each clip keeps its own licence; CC-BY(-SA) clips are",
        "attributed here. Synthesized scores were rendered with the FluidR3_GM soundfont.",
        "",
        "| file | artist | title | source | licence |",
        "|---|---|---|---|---|",
    ]
    for r in chosen:
        lines.append(
            f"| music/{r['path']} | {r['artist']} | {r['title']} | {r['source_package']} "
            f"({r['source_file']}, {r['package_version']}) | {r['licence']} |"
        )
    (dst / "CREDITS.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(chosen)} clips from {len(ARTISTS)} artists -> {dst}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/music"), Path("demo"))
