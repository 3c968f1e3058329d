"""The edge in front of the five services: routing, problems, limits, headers, static files.

See conftest.py for how to run these tests.
"""

from __future__ import annotations

import json
import re
import socket
import time

import pytest

from conftest import (
    PUBLIC_DIR,
    REQUEST_ID_RE,
    SERVICES,
    assert_problem,
    free_port,
    http,
    raw_get,
    RawConnection,
    wait_until,
    signed_in,
)

TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
OPENAPI_31_RE = re.compile(r"^openapi:\s*[\"']?3\.1", re.MULTILINE)
DEPARTMENT = "e2e-nephrology"


def logged_request_ids(proc) -> set[str]:
    return {str(record["request_id"]) for record in proc.logs() if "request_id" in record}


def wait_for_logged_request_id(proc, request_id: str) -> None:
    wait_until(
        lambda: request_id in logged_request_ids(proc),
        timeout=10,
        message=lambda: (
            f"a JSON log line of {proc.name} with request_id {request_id!r}\n{proc.describe()}"
        ),
    )


def department_body(size: int | None = None, description: str = "Kidney care (e2e).") -> bytes:
    """A department PUT body; with `size`, padded to exactly that many bytes."""
    body = {"name": "肾内科", "nameEn": "Nephrology", "description": description}
    if size is not None:
        body["description"] = ""
        empty = len(json.dumps(body).encode())
        body["description"] = "x" * (size - empty)
    data = json.dumps(body).encode()
    assert size is None or len(data) == size
    return data


def response_with_status(platform_or_url, path: str, status: int, timeout: float = 10.0, **kwargs):
    """Poll a GET until it answers `status`; return that response."""
    url = platform_or_url if isinstance(platform_or_url, str) else platform_or_url.url

    def attempt():
        response = http("GET", url + path, timeout=5, **kwargs)
        # A tuple, because a requests.Response with an error status is falsy.
        return (response,) if response.status_code == status else None

    return wait_until(attempt, timeout=timeout, message=f"GET {path} to answer {status}")[0]


# ---------------------------------------------------------------------------
# health and request ids
# ---------------------------------------------------------------------------


def test_every_service_is_ready_through_the_edge(platform):
    response = platform.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready", body
    assert set(body["services"]) == set(SERVICES), body
    for name in SERVICES:
        assert body["services"][name]["status"] == "ready", (name, body)


def test_a_client_request_id_is_echoed_and_reaches_the_service_log(platform):
    response = platform.get("/api/registration/departments", headers={"X-Request-ID": "e2e-abc-123"})
    assert response.status_code == 200, response.text
    assert response.headers.get("X-Request-ID") == "e2e-abc-123"
    wait_for_logged_request_id(platform.services["registration"], "e2e-abc-123")


def test_a_request_without_an_id_gets_a_generated_one_that_reaches_the_service_log(platform):
    response = platform.get("/api/registration/departments")
    assert response.status_code == 200, response.text
    generated = response.headers.get("X-Request-ID")
    assert generated and REQUEST_ID_RE.match(generated), generated
    wait_for_logged_request_id(platform.services["registration"], generated)

    other = platform.get("/api/registration/departments").headers.get("X-Request-ID")
    assert other and other != generated, "two requests got the same generated id"


def test_a_request_id_of_128_allowed_characters_is_kept(platform):
    longest = ("aZ09._:-" * 16)[:128]
    response = platform.get("/api/registration/departments", headers={"X-Request-ID": longest})
    assert response.status_code == 200, response.text
    assert response.headers.get("X-Request-ID") == longest


@pytest.mark.parametrize(
    "bad_id",
    ["a" * 300, "a" * 129, "e2e has spaces", "e2e;semicolon", "e2e/slash", "<e2e>"],
    ids=["300-chars", "129-chars", "spaces", "semicolon", "slash", "angle-brackets"],
)
def test_an_invalid_request_id_is_replaced_by_a_generated_one(platform, bad_id):
    response = platform.get("/api/registration/departments", headers={"X-Request-ID": bad_id})
    assert response.status_code == 200, response.text
    replacement = response.headers.get("X-Request-ID")
    assert replacement and replacement != bad_id
    assert REQUEST_ID_RE.match(replacement), replacement


# ---------------------------------------------------------------------------
# problems and the registration routes
# ---------------------------------------------------------------------------


def test_an_unknown_route_of_a_service_is_a_404_problem_once_signed_in(platform):
    # Routes are protected unless listed as public, so an unknown one needs a token first: nothing about a
    # service's routes is learned without signing in.
    assert assert_problem(platform.get("/api/registration/no-such-route"), 401)["code"] == "authentication-required"
    assert_problem(platform.get("/api/registration/no-such-route", headers=signed_in()), 404)


def test_an_unknown_service_is_a_404_problem(platform):
    assert_problem(platform.get("/api/nosuch/x"), 404)


def test_a_malformed_json_body_is_a_400_problem_with_a_detail(platform):
    response = platform.put(
        "/api/registration/departments/hematology",
        data=b'{"name": "\xe8\xa1\x80\xe6\xb6\xb2\xe7\xa7\x91", "nameEn": ',
        headers={**platform.auth(), "Content-Type": "application/json"},
    )
    assert_problem(response, 400, detail_required=True)


def test_a_write_without_an_admin_token_is_a_401_or_403_problem(platform):
    response = platform.put(
        f"/api/registration/departments/{DEPARTMENT}",
        data=department_body(),
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 401)

    wrong = platform.put(
        f"/api/registration/departments/{DEPARTMENT}",
        data=department_body(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + "0" * 64},
    )
    assert_problem(wrong, 401)

    doctor = platform.put(
        f"/api/registration/departments/{DEPARTMENT}",
        data=department_body(),
        headers=signed_in({"Content-Type": "application/json"}, subject="staff_e2e", kind="staff", roles=("doctor",)),
    )
    assert_problem(doctor, 403)

    listing = platform.get("/api/registration/departments").json()["departments"]
    assert DEPARTMENT not in [d.get("id") for d in listing], "an unauthorised PUT wrote a department"


def test_a_department_put_creates_then_updates_and_is_listed(platform):
    path = f"/api/registration/departments/{DEPARTMENT}"
    headers = {**platform.auth(), "Content-Type": "application/json"}

    created = platform.put(path, data=department_body(), headers=headers)
    assert created.status_code == 201, created.text

    listing = platform.get("/api/registration/departments")
    assert listing.status_code == 200, listing.text
    entries = {d["id"]: d for d in listing.json()["departments"]}
    assert DEPARTMENT in entries, listing.json()
    assert entries[DEPARTMENT]["name"] == "肾内科"
    assert entries[DEPARTMENT]["nameEn"] == "Nephrology"
    assert entries[DEPARTMENT]["description"] == "Kidney care (e2e)."

    updated = platform.put(path, data=department_body(description="Updated by e2e."), headers=headers)
    assert updated.status_code == 200, updated.text

    single = platform.get(path)
    assert single.status_code == 200, single.text
    assert single.json()["description"] == "Updated by e2e."
    assert single.json()["id"] == DEPARTMENT


# ---------------------------------------------------------------------------
# internal routes and path tricks
# ---------------------------------------------------------------------------


def test_internal_routes_are_not_exposed_through_the_edge(platform):
    # The services do have them (so a 404 below means "not forwarded").
    direct = http("GET", platform.services["registration"].url + "/metrics")
    assert direct.status_code == 200 and "# TYPE" in direct.text, direct.text[:300]

    failures = []
    for service in SERVICES:
        for rest in ("metrics", "health/ready", "health/live", "internal/x"):
            response = platform.get(f"/api/{service}/{rest}")
            try:
                assert "# TYPE" not in response.text
                assert_problem(response, 404)
            except AssertionError as error:
                failures.append(f"/api/{service}/{rest}: {error}")
    assert not failures, "\n".join(failures)


TRAVERSALS = [
    "/api/registration/../metrics",
    "/api/registration/./metrics",
    "/api/registration/%2e%2e/metrics",
    "/api/registration/%2E%2E/metrics",
    "/api/registration/.%2e/metrics",
    "/api/registration/%2e/metrics",
    "/api/registration/health/../metrics",
    "/api/registration/departments/..%2fmetrics",
    "/api/registration/a%2fb",
    "/api/registration/a%2Fb",
    "/api/nosuch/../registration/metrics",
]


def test_path_traversal_never_reaches_internal_routes(platform):
    failures = []
    for target in TRAVERSALS:
        response = raw_get(platform.edge.port, target)
        try:
            assert "# TYPE" not in response.text, "metrics text leaked"
            assert_problem(response, (400, 404))
        except AssertionError as error:
            failures.append(f"{target}: {error}")
    assert not failures, "\n".join(failures)


def test_edge_metrics_are_served_to_loopback_peers(platform):
    response = platform.get("/metrics")
    assert response.status_code == 200, response.text[:300]
    assert "# TYPE" in response.text
    assert "text/plain" in response.headers.get("Content-Type", "")


def _non_loopback_ipv4() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))  # UDP connect: picks a route, sends nothing
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_edge_metrics_are_hidden_from_non_loopback_peers(launcher):
    address = _non_loopback_ipv4()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    port = free_port(address)
    edge = launcher.edge(port=port, env={"YUNZHEN_HOST": address}, wait=False)
    wait_until(
        lambda: http("GET", f"http://{address}:{port}/health/live", timeout=2).status_code == 200,
        timeout=60,
        message=f"the edge to listen on {address}:{port}",
        abort=edge.exit_reason,
    )
    for headers in ({}, {"X-Forwarded-For": "127.0.0.1"}):
        response = http("GET", f"http://{address}:{port}/metrics", headers=headers)
        assert response.status_code == 404, (headers, response.status_code, response.text[:300])
        assert "# TYPE" not in response.text


# ---------------------------------------------------------------------------
# OpenAPI and the edge's own routes
# ---------------------------------------------------------------------------


def test_every_service_openapi_document_is_served_through_the_edge(platform):
    for service in SERVICES:
        response = platform.get(f"/api/{service}/openapi.yaml")
        assert response.status_code == 200, (service, response.status_code, response.text[:300])
        assert OPENAPI_31_RE.search(response.text), (service, response.text[:300])
        assert "yaml" in response.headers.get("Content-Type", ""), (service, response.headers)


def test_the_edge_serves_its_own_health_and_openapi(platform):
    live = platform.get("/health/live")
    assert live.status_code == 200 and live.json()["status"] == "live", live.text
    ready = platform.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
    document = platform.get("/openapi.yaml")
    assert document.status_code == 200, document.text[:300]
    assert OPENAPI_31_RE.search(document.text), document.text[:300]


# ---------------------------------------------------------------------------
# upstream failures
# ---------------------------------------------------------------------------


def test_a_stopped_service_gives_a_502_problem_and_recovers_after_restart(platform):
    consult = platform.services["consult"]
    consult.terminate()
    assert consult.wait(10) == 0

    response = response_with_status(platform, "/api/consult/openapi.yaml", 502)
    body = assert_problem(response, 502)
    assert body.get("service") == "consult", body
    assert "consult" in body["detail"], body

    health = response_with_status(platform, "/health", 503)
    health_body = health.json()
    assert health_body["status"] == "degraded", health_body
    assert health_body["services"]["consult"]["status"] == "unavailable", health_body
    for name in SERVICES:
        if name != "consult":
            assert health_body["services"][name]["status"] == "ready", (name, health_body)

    consult.restart()  # same command line, same port
    response_with_status(platform, "/api/consult/openapi.yaml", 200, timeout=60)
    response_with_status(platform, "/health", 200, timeout=30)


def test_a_slow_upstream_gives_a_504_problem(launcher, fake_upstreams):
    hole = fake_upstreams.black_hole()
    edge = launcher.edge({"reports": hole.url}, env={"YUNZHEN_UPSTREAM_TIMEOUT_MS": "500"})

    started = time.monotonic()
    response = http("GET", edge.url + "/api/reports/anything", timeout=15, headers=signed_in())
    elapsed = time.monotonic() - started

    body = assert_problem(response, 504)
    assert body.get("service") == "reports" or "reports" in body["detail"], body
    assert elapsed < 5, f"504 took {elapsed:.2f}s with a 500 ms upstream timeout"
    assert hole.accepted.is_set(), "the edge never connected to the upstream"


# ---------------------------------------------------------------------------
# body limit
# ---------------------------------------------------------------------------


def test_a_body_over_the_limit_is_a_413_problem_and_one_at_the_limit_passes(launcher, fake_upstreams):
    upstream = fake_upstreams.recording()
    edge = launcher.edge({"followup": upstream.url}, env={"YUNZHEN_EDGE_BODY_LIMIT": "1024"})
    octets = signed_in({"Content-Type": "application/octet-stream"})

    at_limit = http("POST", edge.url + "/api/followup/upload", data=b"a" * 1024, headers=octets)
    assert at_limit.status_code == 200, at_limit.text
    assert upstream.requests[-1].body == b"a" * 1024

    for size in (1025, 2048):
        assert_problem(http("POST", edge.url + "/api/followup/upload", data=b"b" * size, headers=octets), 413)

    # The same without Content-Length: 4 chunks of 512 bytes.
    chunks = b"".join(b"200\r\n" + b"c" * 512 + b"\r\n" for _ in range(4)) + b"0\r\n\r\n"
    with RawConnection(edge.port) as conn:
        conn.send(
            (
                f"POST /api/followup/upload HTTP/1.1\r\nHost: 127.0.0.1:{edge.port}\r\n"
                f"Authorization: {octets['Authorization']}\r\n"
                "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            + chunks
        )
        assert_problem(conn.read_response(), 413)

    assert all(len(r.body) <= 1024 for r in upstream.requests), [len(r.body) for r in upstream.requests]


def test_a_body_under_the_limit_reaches_registration_and_one_over_is_413(platform):
    limited = platform.start_edge(env={"YUNZHEN_EDGE_BODY_LIMIT": "1024"}, name="edge-limited")
    path = f"/api/registration/departments/{DEPARTMENT}"
    headers = {**platform.auth(), "Content-Type": "application/json"}

    description = ("Body limit check. " * 40)[:512]
    small = department_body(description=description)
    assert len(small) <= 1024
    response = http("PUT", limited.url + path, data=small, headers=headers)
    assert response.status_code in (200, 201), response.text

    too_big = http("PUT", limited.url + path, data=department_body(size=2048), headers=headers)
    assert_problem(too_big, 413)

    stored = platform.get(path)
    assert stored.status_code == 200, stored.text
    assert stored.json()["description"] == description


# ---------------------------------------------------------------------------
# static files
# ---------------------------------------------------------------------------


def test_static_files_have_validators_and_honour_if_none_match(platform):
    response = platform.get("/")
    assert response.status_code == 200, response.text[:300]
    assert response.headers.get("Content-Type", "").startswith("text/html"), response.headers
    etag = response.headers.get("ETag")
    assert etag, response.headers
    assert response.headers.get("Cache-Control"), response.headers
    assert response.headers.get("Last-Modified"), response.headers
    index = PUBLIC_DIR / "index.html"
    if index.is_file():
        assert response.content == index.read_bytes()

    not_modified = platform.get("/", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304, not_modified.status_code
    assert not_modified.content == b""

    changed = platform.get("/", headers={"If-None-Match": '"e2e-not-the-etag"'})
    assert changed.status_code == 200


def test_a_missing_static_file_is_404(platform):
    assert platform.get("/no-such-file.css").status_code == 404


def test_static_files_cannot_escape_the_public_dir(platform):
    failures = []
    for target in (
        "/../../../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/../../../Package.swift",
        "/%2e%2e/%2e%2e/%2e%2e/Package.swift",
    ):
        response = raw_get(platform.edge.port, target)
        if response.status_code not in (400, 403, 404) or b"root:" in response.content or b"PackageDescription" in response.content:
            failures.append(f"{target}: {response.status_code} {response.content[:120]!r}")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------
# what the upstream sees
# ---------------------------------------------------------------------------


def test_forwarded_requests_carry_forwarding_and_trace_headers_and_the_exact_body(launcher, fake_upstreams):
    upstream = fake_upstreams.recording(body=b'{"ok":true,"from":"fake-followup"}')
    edge = launcher.edge({"followup": upstream.url})
    payload = bytes(range(256)) * 8  # every byte value, not valid UTF-8

    response = http(
        "POST",
        edge.url + "/api/followup/things?a=1&b=%20x",
        data=payload,
        headers=signed_in({"Content-Type": "application/octet-stream", "X-End-To-End": "kept"}),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True, "from": "fake-followup"}

    assert len(upstream.requests) == 1, upstream.requests
    seen = upstream.requests[0]
    headers = seen.headers
    assert seen.method == "POST"
    assert seen.path == "/things?a=1&b=%20x"
    assert seen.body == payload
    assert headers.get("X-Forwarded-For") == "127.0.0.1", headers
    assert headers.get("X-Forwarded-Proto") == "http", headers
    assert headers.get("X-Forwarded-Host") == f"127.0.0.1:{edge.port}", headers
    assert headers.get("X-End-To-End") == "kept", headers
    assert headers.get("Content-Type") == "application/octet-stream", headers

    request_id = headers.get("X-Request-ID")
    assert request_id and REQUEST_ID_RE.match(request_id), headers
    assert response.headers.get("X-Request-ID") == request_id

    match = TRACEPARENT_RE.match(headers.get("traceparent", ""))
    assert match, headers.get("traceparent")
    assert match.group(1) != "0" * 32 and match.group(2) != "0" * 16, headers.get("traceparent")

    again = http("GET", edge.url + "/api/followup/things", headers=signed_in({"X-Request-ID": "e2e-fwd-1"}))
    assert again.status_code == 200
    assert upstream.requests[-1].headers.get("X-Request-ID") == "e2e-fwd-1"
    assert upstream.requests[-1].path == "/things"


def test_hop_by_hop_headers_are_stripped_both_ways(launcher, fake_upstreams):
    upstream = fake_upstreams.recording(
        headers=[
            ("Content-Type", "application/json"),
            ("Connection", "keep-alive, X-Upstream-Hop"),
            ("X-Upstream-Hop", "secret"),
            ("Keep-Alive", "timeout=7, max=77"),
            ("X-Upstream-Normal", "yes"),
        ]
    )
    edge = launcher.edge({"followup": upstream.url})

    response = http(
        "GET",
        edge.url + "/api/followup/hop",
        headers=signed_in({
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "1",
            "Keep-Alive": "timeout=9",
            "TE": "trailers",
            "Upgrade": "e2e-test/1",
            "X-End-To-End": "kept",
        }),
    )
    assert response.status_code == 200, response.text

    seen = upstream.requests[-1]
    for name in ("X-Secret-Hop", "Keep-Alive", "TE", "Upgrade"):
        assert not seen.has_header(name), (name, seen.header_list)
    # The edge's own client may say keep-alive/close; it must not pass the client's list on.
    connection_tokens = {t.strip().lower() for t in seen.headers.get("Connection", "").split(",") if t.strip()}
    assert connection_tokens <= {"keep-alive", "close"}, seen.header_list
    assert seen.headers.get("X-End-To-End") == "kept"

    assert "X-Upstream-Hop" not in response.headers, response.headers
    assert response.headers.get("Keep-Alive") != "timeout=7, max=77", response.headers
    assert "x-upstream-hop" not in response.headers.get("Connection", "").lower(), response.headers
    assert response.headers.get("X-Upstream-Normal") == "yes", response.headers
