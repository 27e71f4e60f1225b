"""library.py: artist precedence, manifests (CSV/YAML) and their errors, name normalisation."""

from __future__ import annotations

import pytest

from soundalike.errors import ManifestError, ParameterError
from soundalike.library import artist_key, file_sha256, read_manifest, read_tags, scan
from tests.conftest import tone


def test_artist_key_normalises_case_space_unicode_and_feat():
    assert artist_key("  Daft   Punk feat. Pharrell Williams") == "daft punk"
    assert artist_key("DAFT PUNK (ft. Someone)") == "daft punk"
    assert artist_key("ＡＢＢＡ") == "abba"
    assert artist_key("Beyoncé") == artist_key("Beyonce\u0301")  # NFKC composes the accent


def test_folder_layout_and_tags(write_audio, tmp_path):
    import mutagen

    write_audio("lib/Folder Artist/Album/01.wav", tone(220, 2))
    tagged = write_audio("lib/Wrong Folder/02.flac", tone(330, 2))
    f = mutagen.File(str(tagged), easy=True)
    f["artist"] = "Track Artist"
    f["albumartist"] = "Album Artist"
    f["title"] = "Song"
    f["genre"] = "Rock;Pop"
    f["musicbrainz_albumartistid"] = "0383dadf-2a4e-4d10-a46a-e9e041da8eb3"
    f.save()
    (tmp_path / "lib" / "notes.txt").write_text("not audio: skipped without a failure")
    (tmp_path / "lib" / "score.mid").write_bytes(b"MThd")
    res = scan(tmp_path / "lib")
    by_name = {t.path.name: t for t in res.tracks}
    assert set(by_name) == {"01.wav", "02.flac"}
    assert by_name["01.wav"].artist == "Folder Artist" and by_name["01.wav"].artist_source == "folder"
    t = by_name["02.flac"]
    assert (t.artist, t.artist_source, t.title, t.genres) == ("Album Artist", "albumartist", "Song", ["Rock", "Pop"])
    assert t.artist_mbid == "0383dadf-2a4e-4d10-a46a-e9e041da8eb3"
    assert [(k) for _, k, _ in res.failures] == ["unsupported"]
    assert read_tags(tmp_path / "lib" / "notes.txt") == {}


def test_csv_manifest_overrides_and_resolves_relative_paths(write_audio, tmp_path):
    a = write_audio("music/x/a.wav", tone(220, 2))
    write_audio("music/x/b.wav", tone(330, 2))  # not listed: not ingested
    m = tmp_path / "music" / "manifest.csv"
    m.write_text("path,artist,title,genre,extra,track_id\nx/a.wav,Manifest Artist,T,rock; pop,ignored,ext-1\n")
    res = scan(tmp_path / "music", manifest=m)
    assert len(res.tracks) == 1
    t = res.tracks[0]
    assert t.path == a.resolve() and t.artist == "Manifest Artist" and t.genres == ["rock", "pop"]
    assert t.external_id == "ext-1" and t.artist_source == "manifest"


def test_yaml_manifest(write_audio, tmp_path):
    write_audio("a.wav", tone(220, 2))
    m = tmp_path / "m.yaml"
    m.write_text("- path: a.wav\n  artist: Y Artist\n  genre: jazz\n")
    rows = read_manifest(m)
    assert rows[0].artist == "Y Artist" and rows[0].genres == ["jazz"]


@pytest.mark.parametrize(
    "text,suffix,match",
    [
        ("file,artist\na.wav,X\n", ".csv", r"line 1: missing column\(s\) path"),
        ("path,artist\na.wav,\n", ".csv", r"line 2: field 'artist' is empty"),
        ("path,artist\na.wav,X,extra\n", ".csv", r"line 2: more cells"),
        ("- path: a.wav\n  artist: [unclosed\n", ".yaml", r"line \d+: not valid YAML"),
        ("path: a.wav\n", ".yaml", "expected a YAML list"),
        ("- path: a.wav\n", ".yaml", r"item 1: field 'artist' is empty"),
    ],
)
def test_malformed_manifests_name_line_and_field(tmp_path, text, suffix, match):
    m = tmp_path / f"m{suffix}"
    m.write_text(text)
    with pytest.raises(ManifestError, match=match):
        read_manifest(m)


def test_missing_root_and_hash(tmp_path, write_audio):
    with pytest.raises(ParameterError, match="does not exist"):
        scan(tmp_path / "nowhere")
    p = write_audio("a.wav", tone(220, 1))
    import hashlib

    assert file_sha256(p) == hashlib.sha256(p.read_bytes()).hexdigest()
