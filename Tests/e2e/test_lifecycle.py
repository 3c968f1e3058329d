"""Start-up, readiness, configuration errors and graceful shutdown of each process.

See conftest.py for how to run these tests.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import (
    EX_CONFIG,
    PUBLIC_DIR,
    REGISTRATION_ENV,
    TEST_VERIFY_KEYS,
    SERVICES,
    RawConnection,
    admin_headers,
    assert_problem,
    connection_refused,
    free_port,
    http,
    http_status,
    server_side_unread_bytes,
    wait_ready,
    wait_until,
    signed_in,
)

OPENAPI_31_RE = re.compile(r"^openapi:\s*[\"']?3\.1", re.MULTILINE)


def exit_within(proc, since: float, seconds: float) -> int:
    """The exit code of `proc`, which must exit within `seconds` of `since`."""
    return proc.wait(max(0.1, since + seconds - time.monotonic()))


def start(launcher, executable: str, env=None, wait: bool = True):
    if executable == "edge":
        return launcher.edge(env=env, wait=wait)
    return launcher.service(executable, env=env, wait=wait)


# ---------------------------------------------------------------------------
# graceful shutdown
# ---------------------------------------------------------------------------


@pytest.mark.deadline(60)
def test_the_edge_finishes_an_in_flight_request_on_sigterm_and_exits_0(launcher, fake_upstreams):
    upstream = fake_upstreams.recording(delay=1.5, body=b'{"slow":true}')
    edge = launcher.edge({"followup": upstream.url})

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(http, "GET", edge.url + "/api/followup/slow", timeout=20, headers=signed_in())
        wait_until(upstream.received.is_set, timeout=10, message="the request to reach the slow upstream")
        signalled = time.monotonic()
        edge.terminate()
        response = pending.result(timeout=20)

    assert response.status_code == 200, response.text
    assert response.json() == {"slow": True}
    assert exit_within(edge, signalled, 10) == 0


@pytest.mark.deadline(60)
def test_the_edge_stops_accepting_connections_while_it_drains(launcher, fake_upstreams):
    upstream = fake_upstreams.recording(delay=4.0, body=b'{"slow":true}')
    edge = launcher.edge({"followup": upstream.url})

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(http, "GET", edge.url + "/api/followup/slow", timeout=20, headers=signed_in())
        wait_until(upstream.received.is_set, timeout=10, message="the request to reach the slow upstream")
        signalled = time.monotonic()
        edge.terminate()
        wait_until(lambda: connection_refused(edge.port), timeout=3, message="the edge to stop listening")
        assert not pending.done(), "the in-flight request finished before the listener closed"
        response = pending.result(timeout=20)

    assert response.status_code == 200, response.text
    assert exit_within(edge, signalled, 10) == 0


@pytest.mark.deadline(90)
def test_a_service_finishes_a_half_sent_request_on_sigterm_and_exits_0(launcher):
    registration = launcher.service("registration")
    body = json.dumps(
        {"name": "心内科", "nameEn": "Cardiology", "description": "Sent in two halves (e2e)."}
    ).encode()
    half = len(body) // 2
    head = (
        f"PUT /departments/e2e-cardiology HTTP/1.1\r\nHost: 127.0.0.1:{registration.port}\r\n"
        f"Authorization: {admin_headers()['Authorization']}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()

    with RawConnection(registration.port) as conn:
        conn.send(head + body[:half])
        client_port = conn.sock.getsockname()[1]
        wait_until(
            lambda: server_side_unread_bytes(registration.port, client_port) == 0,
            timeout=5,
            message="registration to read the request head",
        )
        signalled = time.monotonic()
        registration.terminate()
        time.sleep(0.3)  # the scenario itself: the rest of the body arrives after shutdown began
        conn.send(body[half:])
        response = conn.read_response(timeout=10)

    assert response.status_code in (200, 201), (response.status_code, response.text)
    assert exit_within(registration, signalled, 10) == 0

    # What was acknowledged was stored.
    registration.restart()
    wait_ready(registration)
    stored = http("GET", registration.url + "/departments/e2e-cardiology")
    assert stored.status_code == 200, stored.text
    assert stored.json()["nameEn"] == "Cardiology"


@pytest.mark.parametrize("executable", ["registration", "edge"])
def test_an_idle_keep_alive_connection_does_not_hold_up_shutdown(launcher, executable):
    proc = start(launcher, executable)
    with RawConnection(proc.port) as conn:
        # HTTP/1.1 without Connection: close, as a browser would leave it.
        conn.send(f"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1:{proc.port}\r\n\r\n".encode())
        assert conn.read_response().status_code == 200
        signalled = time.monotonic()
        proc.terminate()
        assert exit_within(proc, signalled, 10) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("executable", SERVICES + ("edge",))
def test_an_idle_process_exits_0_on_a_stop_signal(launcher, executable, sig):
    proc = start(launcher, executable)
    signalled = time.monotonic()
    proc.send_signal(sig)
    assert exit_within(proc, signalled, 10) == 0
    assert connection_refused(proc.port)


# ---------------------------------------------------------------------------
# configuration errors
# ---------------------------------------------------------------------------

CONFIG_ERRORS = [
    *[(name, {"YUNZHEN_PORT": "abc"}, "YUNZHEN_PORT") for name in SERVICES + ("edge",)],
    *[(name, {"YUNZHEN_DATA": None}, "YUNZHEN_DATA") for name in SERVICES],
    ("registration", {"YUNZHEN_PORT": "70000"}, "YUNZHEN_PORT"),
    ("consult", {"YUNZHEN_LOG_LEVEL": "loud"}, "YUNZHEN_LOG_LEVEL"),
    ("reports", {"YUNZHEN_LOG_FORMAT": "xml"}, "YUNZHEN_LOG_FORMAT"),
    ("registration", {"YUNZHEN_BOOTSTRAP_ADMIN_PASSWORD": "admin"}, "YUNZHEN_BOOTSTRAP_ADMIN_PASSWORD"),
    ("registration", {"YUNZHEN_AUTH_SIGNING_KEY": None}, "YUNZHEN_AUTH_SIGNING_KEY"),
    ("registration", {"YUNZHEN_AUTH_SIGNING_KEY": "k1:AAAA"}, "YUNZHEN_AUTH_SIGNING_KEY"),
    ("registration", {"YUNZHEN_AUTH_VERIFY_KEYS": "old:not-base64!"}, "YUNZHEN_AUTH_VERIFY_KEYS"),
    ("registration", {"YUNZHEN_ENVIRONMENT": "staging"}, "YUNZHEN_ENVIRONMENT"),
    # Production never takes the sandbox SMS gateway, and by default needs a real provider.
    ("registration", {"YUNZHEN_ENVIRONMENT": "production", "YUNZHEN_SMS_GATEWAY": "sandbox"}, "YUNZHEN_SMS_GATEWAY"),
    ("registration", {"YUNZHEN_ENVIRONMENT": "production"}, "YUNZHEN_SMS_URL"),
    ("registration", {"YUNZHEN_SMS_GATEWAY": "http", "YUNZHEN_SMS_URL": "https://sms.example.cn/v1",
                      "YUNZHEN_SMS_KEY_ID": "k", "YUNZHEN_SMS_SECRET": "short"}, "YUNZHEN_SMS_SECRET"),
    # Nor the sandbox payment provider; a real one must be https and signed with a long secret.
    ("registration", {"YUNZHEN_ENVIRONMENT": "production", "YUNZHEN_SMS_GATEWAY": "http",
                      "YUNZHEN_SMS_URL": "https://sms.example.cn/v1", "YUNZHEN_SMS_KEY_ID": "k",
                      "YUNZHEN_SMS_SECRET": "s" * 40, "YUNZHEN_PAYMENT_GATEWAY": "sandbox"}, "YUNZHEN_PAYMENT_GATEWAY"),
    ("registration", {"YUNZHEN_ENVIRONMENT": "production", "YUNZHEN_SMS_GATEWAY": "http",
                      "YUNZHEN_SMS_URL": "https://sms.example.cn/v1", "YUNZHEN_SMS_KEY_ID": "k",
                      "YUNZHEN_SMS_SECRET": "s" * 40, "YUNZHEN_PAYMENT_URL": "http://pay.example.cn/v1",
                      "YUNZHEN_PAYMENT_NOTIFY_URL": "https://h.example/api/registration/payments/notify",
                      "YUNZHEN_PAYMENT_KEY_ID": "k", "YUNZHEN_PAYMENT_SECRET": "p" * 40}, "YUNZHEN_PAYMENT_URL"),
    ("registration", {"YUNZHEN_PAYMENT_GATEWAY": "http", "YUNZHEN_PAYMENT_URL": "https://pay.example.cn/v1",
                      "YUNZHEN_PAYMENT_NOTIFY_URL": "https://h.example/notify", "YUNZHEN_PAYMENT_KEY_ID": "k",
                      "YUNZHEN_PAYMENT_SECRET": "short"}, "YUNZHEN_PAYMENT_SECRET"),
    ("registration", {"YUNZHEN_BOOKING_OPENS_AT": "25:00"}, "YUNZHEN_BOOKING_OPENS_AT"),
    ("registration", {"YUNZHEN_BOOKING_HOLD_MINUTES": "0"}, "YUNZHEN_BOOKING_HOLD_MINUTES"),
    ("registration", {"YUNZHEN_HOSPITAL_PROVINCE": "Atlantis"}, "YUNZHEN_HOSPITAL_PROVINCE"),
    ("edge", {"YUNZHEN_EDGE_BODY_LIMIT": "lots"}, "YUNZHEN_EDGE_BODY_LIMIT"),
    ("edge", {"YUNZHEN_UPSTREAM_TIMEOUT_MS": "soon"}, "YUNZHEN_UPSTREAM_TIMEOUT_MS"),
    ("edge", {"YUNZHEN_UPSTREAM_CONNECT_TIMEOUT_MS": "-1"}, "YUNZHEN_UPSTREAM_CONNECT_TIMEOUT_MS"),
    ("edge", {"YUNZHEN_UPSTREAM_REPORTS": "not a url"}, "YUNZHEN_UPSTREAM_REPORTS"),
    ("edge", {"YUNZHEN_AUTH_VERIFY_KEYS": None}, "YUNZHEN_AUTH_VERIFY_KEYS"),
    ("reports", {"YUNZHEN_AUTH_VERIFY_KEYS": None}, "YUNZHEN_AUTH_VERIFY_KEYS"),
    ("screening", {"YUNZHEN_AUTH_VERIFY_KEYS": "k1:short"}, "YUNZHEN_AUTH_VERIFY_KEYS"),
    ("edge", {"YUNZHEN_EDGE_SIGN_IN_PER_MINUTE": "0"}, "YUNZHEN_EDGE_SIGN_IN_PER_MINUTE"),
]


@pytest.mark.parametrize(
    "executable, overrides, variable",
    CONFIG_ERRORS,
    ids=[f"{e}-{v}={o.get(v, 'default') if o.get(v, '') is not None else 'unset'}" for e, o, v in CONFIG_ERRORS],
)
def test_a_bad_configuration_value_is_named_at_start_up(launcher, tmp_path, executable, overrides, variable):
    env = {
        "YUNZHEN_HOST": "127.0.0.1",
        "YUNZHEN_PORT": str(free_port()),
        "YUNZHEN_LOG_FORMAT": "json",
    }
    if executable == "edge":
        env["YUNZHEN_EDGE_PUBLIC_DIR"] = str(PUBLIC_DIR)  # only the variable under test is wrong
        env["YUNZHEN_AUTH_VERIFY_KEYS"] = TEST_VERIFY_KEYS
    else:
        env["YUNZHEN_DATA"] = str(tmp_path / "data")
        env["YUNZHEN_AUTH_VERIFY_KEYS"] = TEST_VERIFY_KEYS
    if executable == "registration":
        env.update(REGISTRATION_ENV)
    env.update(overrides)
    proc = launcher.start(executable, executable, env=env)
    code = proc.wait(10)
    assert code != 0, f"{executable} accepted {overrides}"
    assert code == EX_CONFIG, f"exit code {code}, expected {EX_CONFIG} (EX_CONFIG)\n{proc.describe()}"
    assert variable in proc.stderr_text(), f"stderr does not name {variable}:\n{proc.stderr_text()}"


# ---------------------------------------------------------------------------
# what every service exposes directly
# ---------------------------------------------------------------------------


def test_each_service_keeps_its_database_under_the_data_root(platform):
    for name in SERVICES:
        database = platform.data_dir / name / f"{name}.sqlite"
        assert database.is_file(), f"{database} does not exist"


def test_every_service_answers_health_metrics_openapi_and_problems_directly(platform):
    failures = []
    for name, proc in platform.services.items():
        try:
            live = http("GET", proc.url + "/health/live")
            assert live.status_code == 200 and live.json() == {"status": "live"}, live.text
            ready = http("GET", proc.url + "/health/ready")
            assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
            metrics = http("GET", proc.url + "/metrics")
            assert metrics.status_code == 200 and "# TYPE" in metrics.text, metrics.text[:200]
            document = http("GET", proc.url + "/openapi.yaml")
            assert document.status_code == 200 and OPENAPI_31_RE.search(document.text), document.text[:200]
            assert "application/yaml" in document.headers.get("Content-Type", ""), document.headers
            missing = http("GET", proc.url + "/no-such-route", headers={"X-Request-ID": f"e2e-{name}-1"})
            assert missing.headers.get("X-Request-ID") == f"e2e-{name}-1", missing.headers
            assert_problem(missing, 404)
        except AssertionError as error:
            failures.append(f"{name}: {error}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("executable", ["registration", "edge"])
def test_systemd_is_told_ready_once_listening_and_stopping_on_shutdown(launcher, executable):
    directory = Path(tempfile.mkdtemp(prefix="yz-notify-", dir="/tmp"))  # short path for AF_UNIX
    path = directory / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    messages: list[str] = []

    def received(token: str) -> bool:
        while True:
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                break
            messages.extend(data.decode(errors="replace").splitlines())
        return token in messages

    try:
        sock.bind(str(path))
        sock.setblocking(False)
        proc = start(launcher, executable, env={"NOTIFY_SOCKET": str(path)}, wait=False)
        wait_until(
            lambda: received("READY=1"),
            timeout=60,
            message=lambda: f"READY=1 on NOTIFY_SOCKET (got {messages})",
            abort=proc.exit_reason,
        )
        assert http_status(proc.url + "/health/live") == 200, "READY=1 was sent before listening"
        signalled = time.monotonic()
        proc.terminate()
        wait_until(
            lambda: received("STOPPING=1"),
            timeout=10,
            message=lambda: f"STOPPING=1 on NOTIFY_SOCKET (got {messages})",
        )
        assert exit_within(proc, signalled, 10) == 0
    finally:
        sock.close()
        shutil.rmtree(directory, ignore_errors=True)
