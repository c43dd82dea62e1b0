"""The server's request checks as pure functions: static paths, sampling parameters,
access token, Origin."""

from pathlib import Path

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Request

from moshi.lm.sampling import SamplingOptions
from moshi.stream import routes

WEB = Path(__file__).resolve().parents[2] / "web"
DEFAULTS = SamplingOptions()


def request(path: str, **headers: str) -> Request:
    return Request(path, Headers({k.replace("_", "-"): v for k, v in headers.items()}))


def test_static_serves_the_web_client():
    assert routes.static_file(WEB, "/") == (WEB / "index.html").resolve()
    assert routes.static_file(WEB, "/app.js") == (WEB / "app.js").resolve()
    response = routes.static_response(WEB, "/app.js")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/javascript")


@pytest.mark.parametrize(
    "path",
    [
        "/../README.md",
        "/..%2fREADME.md",
        "/%2e%2e/README.md",
        "/test/ogg.test.mjs",
        "/./app.js",
        "//etc/passwd",
        "/.git/config",
        "/missing.js",
        "/test",
        "/..\\README.md",
        "/app.js%00.html",
    ],
)
def test_static_refuses_unsafe_or_missing_paths(path):
    assert routes.static_file(WEB, path) is None
    assert routes.static_response(WEB, path).status_code == 404


def test_static_refuses_symlinks_out_of_the_root(tmp_path):
    (tmp_path / "secret.txt").write_text("no")
    root = tmp_path / "web"
    root.mkdir()
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    assert routes.static_file(root, "/link.txt") is None


def test_sampling_options_from_the_query():
    q = "text_temperature=0.5&text_topk=10&audio_temperature=1&audio_topk=100&text_seed=7&audio_seed=8"
    q += "&pad_mult=3&repetition_penalty=1.1"  # others Kyutai's client sends: ignored
    assert routes.sampling_options(q, DEFAULTS) == SamplingOptions(
        temp=1.0, top_k=100, temp_text=0.5, top_k_text=10, text_seed=7, audio_seed=8
    )
    assert routes.sampling_options("", DEFAULTS) == DEFAULTS
    assert routes.sampling_options("text_seed=&audio_topk=", DEFAULTS) == DEFAULTS  # empty: default


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("text_temperature=abc", "text_temperature must be a number"),
        ("text_temperature=nan", "text_temperature must be a number"),
        ("audio_temperature=6", "audio_temperature must be a number in"),
        ("audio_temperature=-0.1", "audio_temperature"),
        ("text_topk=-1", "text_topk must be an integer"),
        ("audio_topk=2.5", "audio_topk must be an integer"),
        ("text_seed=-3", "text_seed must be an integer"),
        ("audio_seed=99999999999999999999999", "audio_seed"),
        ("text_seed=1&text_seed=2", "given 2 times"),
    ],
)
def test_bad_sampling_parameters_are_named(query, message):
    with pytest.raises(ValueError, match=message):
        routes.sampling_options(query, DEFAULTS)


def test_token_from_query_or_bearer_header():
    assert routes.token_problem(request("/api/chat"), None) is None
    assert "required" in routes.token_problem(request("/api/chat"), "s3cret")
    assert "wrong" in routes.token_problem(request("/api/chat?auth_token=nope"), "s3cret")
    assert routes.token_problem(request("/api/chat?auth_token=s3cret"), "s3cret") is None
    assert routes.token_problem(request("/api/chat", Authorization="Bearer s3cret"), "s3cret") is None
    assert "wrong" in routes.token_problem(request("/api/chat", Authorization="Bearer x"), "s3cret")


def test_origin_check():
    allowed = ("https://example.com",)
    assert routes.origin_allowed(request("/api/chat", Origin="https://evil.test"), None)
    assert routes.origin_allowed(request("/api/chat"), allowed)  # not a browser
    assert routes.origin_allowed(request("/api/chat", Origin="https://example.com"), allowed)
    assert not routes.origin_allowed(request("/api/chat", Origin="https://evil.test"), allowed)
    own = request("/api/chat", Origin="http://127.0.0.1:8998", Host="127.0.0.1:8998")
    assert routes.origin_allowed(own, allowed)  # the page this server serves
