"""Property-based fuzz over the Subsonic endpoints and their parameters (the OpenAPI fuzzer never sees
``/rest``): whatever a client sends, no server error, and every XML answer is well formed.

Examples are capped (``SOUNDALIKE_FUZZ_EXAMPLES``, default 500) and derandomized so CI stays fast
and repeatable; the test prints how many cases ran.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

import pytest
from _security_support import API_KEY, PASSWORD, USER
from ci_support import import_or_skip

import_or_skip("hypothesis")  # a dev dependency: CI fails rather than skip without it
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EXAMPLES = int(os.environ.get("SOUNDALIKE_FUZZ_EXAMPLES", "500"))
PARAMS = ["id", "count", "size", "offset", "type", "genre", "time", "submission", "query", "artistCount",
          "artistOffset", "albumCount", "albumOffset", "songCount", "songOffset", "startSongId", "endSongId",
          "artistGap", "excludeArtist", "fromYear", "toYear", "musicFolderId", "maxBitRate", "format", "estimateContentLength",
          "ifModifiedSince", "v", "c"]


def _endpoints() -> list[str]:
    from soundalike.serve.subsonic import BINARY, ENDPOINTS
    from soundalike.serve.subsonic_browse import BINARY_ENDPOINTS

    names = sorted({*ENDPOINTS, *BINARY, *BINARY_ENDPOINTS})
    return names + [n + ".view" for n in names[:5]] + ["nope", "getCoverArt.view", "%00", "..%2f..%2fetc"]


def _ids(sec_library) -> list[str]:
    from soundalike.serve.library_state import album_id
    from soundalike.store import Store

    with Store(sec_library["db"], readonly=True) as s:
        tracks = s.tracks()
    out = [t.track_id for t in tracks[:6]] + [str(t.artist_id) for t in tracks[:6]]
    out += [album_id(t.artist_id, t.album) for t in tracks[:3]] + [tracks[0].track_id[:10], "0", "-1", "al-"]
    return out


@pytest.fixture(scope="module")
def fuzz_client(sec_library):
    from fastapi.testclient import TestClient

    from soundalike.serve import create_app
    from _security_support import settings as make_settings

    from soundalike.serve import Settings

    # random wrong logins must not lock the fuzzer out (the throttle has its own tests)
    kw = {"login_free_failures": 10**9} if "login_free_failures" in Settings.__dataclass_fields__ else {}
    app = create_app(make_settings(sec_library["db"], **kw))
    with TestClient(app, base_url="http://localhost") as c:
        yield c


def test_subsonic_fuzz_no_server_errors(fuzz_client, sec_library):
    ids = _ids(sec_library)
    text = st.text(st.characters(codec="utf-8"), max_size=300)  # any code point: controls, NUL, surrogate-free
    numbers = st.integers(min_value=-10**30, max_value=10**30).map(str) | st.just("9" * 400)
    value = st.sampled_from(ids) | text | numbers | st.sampled_from(["true", "false", "", "NaN", "1e309", "\u00b2"])
    auth = st.sampled_from([{"apiKey": API_KEY}, {"u": USER, "p": PASSWORD}, {"u": USER, "p": "enc:zz"},
                            {"u": USER, "t": "x", "s": "y"}, {"apiKey": API_KEY, "u": USER}, {}])
    request = st.fixed_dictionaries({
        "endpoint": st.sampled_from(_endpoints()),
        "params": st.lists(st.tuples(st.sampled_from(PARAMS), value), max_size=6),
        "auth": auth,
        "f": st.sampled_from(["xml", "json", "jsonp", "JSON", "xyz"]),
        "callback": st.sampled_from([None, "cb", "a.b_c", "<script>", "x" * 200]),
        "method": st.sampled_from(["GET", "GET", "POST", "HEAD"]),
    })
    seen = {"cases": 0, "ok": 0, "failed": 0}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(request)
    def run(req):
        params = list(req["params"]) + list(req["auth"].items()) + [("f", req["f"])]
        if req["callback"] is not None:
            params.append(("callback", req["callback"]))
        url = f"/rest/{req['endpoint']}"
        if req["method"] == "POST":
            r = fuzz_client.post(url, data=dict(params))
        else:
            r = fuzz_client.request(req["method"], url, params=params)
        seen["cases"] += 1
        assert r.status_code < 500, (url, params, r.status_code, r.text[:300])
        if req["method"] == "HEAD" or r.status_code != 200:
            return
        ctype = r.headers.get("content-type", "")
        if ctype.startswith("application/xml"):
            root = ET.fromstring(r.content)  # well-formed whatever the tags held
            seen["ok" if root.get("status") == "ok" else "failed"] += 1
        elif ctype.startswith("application/json"):
            doc = json.loads(r.content)["subsonic-response"]
            seen["ok" if doc["status"] == "ok" else "failed"] += 1

    run()
    print(f"\nSubsonic fuzz: {seen['cases']} cases, 0 server errors ({seen['ok']} ok, {seen['failed']} failed envelopes)")
    assert seen["cases"] >= EXAMPLES
    assert seen["ok"] > EXAMPLES // 20  # the fuzzer reached real handlers, not only auth errors
