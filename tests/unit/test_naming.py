"""The naming rules (CONTRACTS "Track title", "Artist precedence") on plain facts, no files."""

from __future__ import annotations

import pytest

from soundalike.errors import ParameterError
from soundalike.naming import (
    NamingFacts,
    artist_key,
    derive_names,
    primary_artist,
    reference_key,
    title_from_path,
)


@pytest.mark.parametrize("name, title", [
    ("03 Eureka.ogg", "Eureka"),
    ("03 - Eureka.flac", "Eureka"),
    ("1-03 Eureka.mp3", "Eureka"),
    ("03. Eureka.mp3", "Eureka"),
    ("03_Eureka.wav", "Eureka"),
    ("(03) Eureka.wav", "Eureka"),
    ("Askyel - 03 - Eureka.ogg", "Eureka"),
    ("03 - Askyel - Eureka.ogg", "Eureka"),
    ("1979.mp3", "1979"),  # only a number: a title, not a track number
    ("01 - 1979.mp3", "1979"),
    ("2-4-6-8 Motorway.mp3", "2-4-6-8 Motorway"),
    ("askyel__dvaered_theme.ogg", "dvaered theme"),
    ("Hyperballad.flac", "Hyperballad"),
])
def test_title_from_file_name(name, title):
    assert title_from_path(f"/music/Askyel/Album/{name}", artist="Askyel" if "__" not in name else "askyel") == title


def test_primary_artist_and_keys():
    assert primary_artist("Daft Punk feat. Pharrell Williams") == "Daft Punk"
    assert primary_artist("Kestrel (ft. Nova)") == "Kestrel"
    assert primary_artist("Kestrel featuring Nova") == "Kestrel"
    # &, "," and / never split a name
    for band in ("AC/DC", "Simon & Garfunkel", "Crosby, Stills, Nash & Young"):
        assert primary_artist(band) == band
    assert primary_artist("Kestrel & Nova", ["Kestrel", "Nova"]) == "Kestrel"
    assert artist_key("johann_sebastian_bach") == artist_key("Johann  Sebastian Bach") == "johann sebastian bach"


def test_reference_key_ignores_case_punctuation_accents_and_track_numbers():
    assert reference_key("Askyel - 03 Eureka") == reference_key("askyel - EUREKA!") == "askyel eureka"
    assert reference_key("AC/DC - T.N.T.") == reference_key("acdc - tnt")
    assert reference_key("Sigur Rós - Hoppípolla") == reference_key("sigur ros - hoppipolla")
    assert reference_key("2 Unlimited - No Limit") == "2 unlimited no limit"  # the artist keeps its number
    assert reference_key("   ") == ""
    # a file name's "_" parts words; spaces are dropped when references are compared
    assert reference_key("Palestrina - Agnus_10") == reference_key("palestrina - agnus 10")
    assert reference_key("bach - bwv101 7").replace(" ", "") == reference_key("Bach - BWV101.7").replace(" ", "")


def test_an_artist_title_reference_finds_file_named_tracks():
    from soundalike.query.refs import resolve_track
    from soundalike.store import Track

    t = Track("ab" * 32, "/m/johann_sebastian_bach/johann_sebastian_bach__bwv101_7.ogg", 1, "johann sebastian bach",
              "bwv101 7", None, None, None, (), "johann sebastian bach")
    assert resolve_track([t], "Johann Sebastian Bach - BWV101.7") is t


def _album(folder: str, album: str, credits: list[str], albumartist: str | None = None, **kw) -> list[NamingFacts]:
    return [NamingFacts(f"/m/{folder}/{i:02d}.flac", artist=c, albumartist=albumartist, album=album,
                        title=f"T{i}", **kw) for i, c in enumerate(credits)]


def test_soundtrack_compilation_and_forced_rules():
    ost = _album("OST", "Game OST", ["Doug Kaufman", "Doug Kaufman", "Mattias Westlund"], "Game Project")
    solo = _album("Daft Punk", "RAM", ["Daft Punk feat. Pharrell", "Daft Punk"], "Daft Punk")
    auto = derive_names(ost + solo)
    assert [(n.artist, n.source) for n in auto[:3]] == [("Doug Kaufman", "mixed-album")] * 2 + [
        ("Mattias Westlund", "mixed-album")]
    # a feat. credit does not make an album mixed; it is shown whole, grouped under the primary
    assert [(n.artist, n.credit, n.source) for n in auto[3:]] == [
        ("Daft Punk", "Daft Punk feat. Pharrell", "albumartist"), ("Daft Punk", "Daft Punk", "albumartist")]
    assert {n.artist for n in derive_names(ost, "album")} == {"Game Project"}
    assert [n.source for n in derive_names(ost + solo, "track")] == ["artist"] * 5


def test_one_track_of_a_compilation_keeps_its_artist():
    # alone in the library, but flagged a compilation or under "Various Artists"
    flagged = _album("C", "Hits", ["Nova"], "Some Label", compilation=True)
    various = _album("V", "Hits", ["Kestrel"], "Various Artists")
    assert [n.artist for n in derive_names(flagged + various)] == ["Nova", "Kestrel"]


def test_manifest_wins_titles_fall_back_and_folders_name_untagged_files():
    facts = [
        NamingFacts("/m/x/01 a.flac", artist="Tagged", manifest_artist="From Manifest", manifest_title="M title"),
        NamingFacts("/m/Askyel/Pilot/03 Eureka.flac", folder_artist="Askyel"),
        NamingFacts("/m/y/02 b.flac", title="Tag title", manifest_title="M title", manifest_artist="X"),
    ]
    names = derive_names(facts)
    assert (names[0].artist, names[0].credit, names[0].title, names[0].source) == (
        "From Manifest", "From Manifest", "M title", "manifest")
    assert (names[1].artist, names[1].title, names[1].source) == ("Askyel", "Eureka", "folder")
    assert names[2].title == "Tag title"  # CONTRACTS: the title tag, else the manifest's
    with pytest.raises(ParameterError, match="auto, track, album"):
        derive_names(facts, "composer")


def test_facts_round_trip_through_json():
    f = NamingFacts("/m/a.flac", artist="A feat. B", artists=("A", "B"), compilation=True, folder_artist="A")
    assert NamingFacts.from_json("/m/a.flac", f.to_json()) == f
