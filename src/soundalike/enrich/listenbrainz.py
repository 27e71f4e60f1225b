"""ListenBrainz similar artists (computed from listening sessions; no key needed).

ListenBrainz serves artist similarity through its labs API (a datasethoster instance):
``GET https://labs.api.listenbrainz.org/similar-artists/json?artist_mbids=<mbid>&algorithm=<name>``
answers a JSON list of ``{"artist_mbid", "name", "comment", "type", "gender", "score",
"reference_mbid"}`` (``score`` an integer, larger is more similar). Older datasethoster versions
wrapped rows as ``[{"type": "dataset", "data": [...]}]``; both are read. An unknown MBID answers
an empty list. The ``/1/`` API has no similar-artists endpoint (``/1/lb-radio/artist/<mbid>``
returns recordings of similar artists, not scores), so it is not used.
"""

from __future__ import annotations

from typing import Any

from .http import HttpClient, Response

__all__ = ["SOURCE", "similar_request", "similar", "parse_similar"]

SOURCE = "listenbrainz"


def similar_request(mbid: str, *, algorithm: str) -> tuple[str, dict[str, Any]]:
    return "/similar-artists/json", {"artist_mbids": mbid, "algorithm": algorithm}


def similar(client: HttpClient, mbid: str, *, algorithm: str) -> Response:
    path, params = similar_request(mbid, algorithm=algorithm)
    return client.get_json(SOURCE, path, params, validate=_rows)


def _rows(data: Any) -> list[dict]:
    if isinstance(data, dict):  # tolerate {"data": [...]} / {"similar_artists": [...]}
        data = data.get("data") or data.get("similar_artists") or []
    if not isinstance(data, list):
        raise ValueError("a ListenBrainz similar-artists answer must be a JSON list")
    rows: list[dict] = []
    for item in data:
        if isinstance(item, dict) and isinstance(item.get("data"), list):
            rows.extend(r for r in item["data"] if isinstance(r, dict))
        elif isinstance(item, dict):
            rows.append(item)
    return rows


def parse_similar(data: Any, query_mbid: str | None = None, *, limit: int | None = None) -> list[tuple[str, str, float]]:
    """``[(artist_mbid, name, score)]`` best first, the query artist itself left out.

    Rows without a score (reference rows of the web view) are skipped.
    """
    out = []
    for r in _rows(data):
        mbid, score = r.get("artist_mbid"), r.get("score")
        if not mbid or score is None or (query_mbid and str(mbid) == query_mbid):
            continue
        try:
            out.append((str(mbid), str(r.get("name") or ""), float(score)))
        except (TypeError, ValueError):
            continue
    out.sort(key=lambda t: -t[2])
    return out[:limit] if limit else out
