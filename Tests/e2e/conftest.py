"""End-to-end tests for yunzhen: they run the real, already built executables.

How to run (from the repository root, after `swift build`):

    YUNZHEN_BIN=.build/debug python3 -m pytest Tests/e2e -q

`YUNZHEN_BIN` is the directory holding `registration`, `reports`, `consult`,
`followup`, `screening`, `edge` and `yunzhen` (default: <repo>/.build/debug; a
relative path is taken from the current directory).  The edges started here
serve static files from Services/edge/Public (or YUNZHEN_E2E_PUBLIC_DIR).  Only the standard
library, `requests` and `pytest` are used.  These tests never build anything.

Every test has a deadline (`e2e_deadline` in pytest.ini, or
`@pytest.mark.deadline(seconds)`), enforced with SIGALRM around set-up and the
test body; waiting for anything goes through `wait_until`, never a bare sleep.
Every process a test starts is killed at teardown, whatever happened, and the
tail of its output is attached to the report of a failing test.

The behaviour checked is the one in docs/CONTRACT-foundation.md.
"""

from __future__ import annotations

import atexit
import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest
import requests
from requests.structures import CaseInsensitiveDict

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("registration", "reports", "consult", "followup", "screening")
EXECUTABLES = SERVICES + ("edge", "yunzhen")
PUBLIC_DIR = Path(os.environ.get("YUNZHEN_E2E_PUBLIC_DIR") or REPO / "Services" / "edge" / "Public")
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:yunzhen:problem:"
EX_CONFIG = 78

# The token-signing key of the test platform (`yunzhen keys generate --kid e2e`): a test fixture, signs nothing real.
TEST_SIGNING_KEY = "e2e:VbByxYJi5YI/nQpdhSiDghVU9Ig9SeW058uVnUEntUU="
TEST_VERIFY_KEYS = "e2e:ZSwbM2YB6qMfLUNoVSv2649WMm4n88O7k2ORzpDufBo="
# What registration needs beyond the common variables to start in the tests: development (so the sandbox SMS
# gateway is allowed) and the signing key.
TEST_ADMIN_PASSWORD = "E2e-Start-Pass-1"
REGISTRATION_ENV = {
    "YUNZHEN_ENVIRONMENT": "development",
    "YUNZHEN_AUTH_SIGNING_KEY": TEST_SIGNING_KEY,
    "YUNZHEN_BOOTSTRAP_ADMIN_PASSWORD": TEST_ADMIN_PASSWORD,
}


def mint_token(
    subject: str = "acct_e2e", kind: str = "patient", roles: tuple[str, ...] = ("patient",), lifetime: int = 900,
    issued_at: float | None = None, departments: tuple[str, ...] = (), teams: tuple[str, ...] = (),
) -> str:
    """An access token signed with the test key, as registration would issue it (JWT, EdDSA, kid e2e)."""
    import base64
    import uuid

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    kid, seed = TEST_SIGNING_KEY.split(":", 1)
    now = int(issued_at if issued_at is not None else time.time())
    header = {"alg": "EdDSA", "kid": kid, "typ": "JWT"}
    claims = {
        "iss": "yunzhen", "aud": ["yunzhen-services"], "sub": subject, "iat": now, "exp": now + lifetime,
        "jti": uuid.uuid4().hex, "kind": kind, "roles": list(roles),
    }
    if departments:
        claims["departments"] = list(departments)
    if teams:
        claims["teams"] = list(teams)
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed)).sign(signing_input.encode())
    return f"{signing_input}.{b64(signature)}"


def admin_headers() -> dict[str, str]:
    """The Authorization of an admin (a token signed with the test key, as the operator's seed tool signs its own)."""
    return {"Authorization": f"Bearer {mint_token(subject='operator:e2e', kind='staff', roles=('admin',))}"}


def signed_in(headers: dict[str, str] | None = None, **token_options) -> dict[str, str]:
    """`headers` plus the Authorization of a signed-in patient (or of `mint_token(**token_options)`)."""
    return {**(headers or {}), "Authorization": f"Bearer {mint_token(**token_options)}"}

# How long a process may take to become ready (debug builds on a small machine).
START_TIMEOUT = float(os.environ.get("YUNZHEN_E2E_START_TIMEOUT", "60"))
# Per-request timeout for every HTTP call the tests make.
HTTP_TIMEOUT = 10.0


# --------------------------------------------------------------------------
# per-test deadline (pytest-timeout is not available; SIGALRM does the job)
# --------------------------------------------------------------------------


class DeadlineExceeded(BaseException):
    """Raised inside the test when its deadline passes.

    A BaseException so that no `except Exception` in the code under the test swallows it.
    """


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "e2e_deadline",
        "deadline in seconds for the set-up and body of each end-to-end test",
        default="120",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "deadline(seconds): per-test deadline overriding e2e_deadline"
    )


def _deadline_seconds(item: pytest.Item) -> float:
    marker = item.get_closest_marker("deadline")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return float(item.config.getini("e2e_deadline"))


def _disarm() -> None:
    if hasattr(signal, "setitimer"):
        signal.setitimer(signal.ITIMER_REAL, 0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    if hasattr(signal, "setitimer"):
        seconds = _deadline_seconds(item)

        def on_alarm(signum, frame):  # noqa: ARG001
            raise DeadlineExceeded(
                f"{item.nodeid} exceeded its deadline of {seconds:g}s"
            )

        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem):
    # Teardown is never interrupted: it is bounded by its own timeouts and
    # must get to kill every process.
    _disarm()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        for proc in getattr(item, "_e2e_procs", []):
            for label, text in (("stdout", proc.stdout_text()), ("stderr", proc.stderr_text())):
                if text.strip():
                    report.sections.append(
                        (f"{proc.name} (pid {proc.pid}) {label}", _tail(text, 60))
                    )


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------
# waiting
# --------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition",
    abort: Callable[[], str | None] | None = None,
) -> Any:
    """Poll `predicate` until it returns something truthy; return that value.

    (Beware: a requests.Response with a 4xx/5xx status is falsy; wrap it.)

    Exceptions raised by the predicate count as "not yet" (the last one is
    reported).  `abort` may return a reason to stop waiting early (e.g. the
    process exited).  Fails the test with AssertionError at the deadline.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    last_value: Any = None
    while True:
        try:
            last_value = predicate()
            if last_value:
                return last_value
        except DeadlineExceeded:
            raise
        except Exception as error:  # noqa: BLE001 - polled, reported below
            last_error = error
        if abort is not None:
            reason = abort()
            if reason:
                raise AssertionError(f"gave up waiting for {_msg(message)}: {reason}")
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_error!r}" if last_error else f"; last value: {last_value!r}"
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {_msg(message)}{detail}"
            )
        time.sleep(interval)


def _msg(message: str | Callable[[], str]) -> str:
    return message() if callable(message) else message


# --------------------------------------------------------------------------
# ports
# --------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct free ports (all held open together while choosing)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_is_free(port: int, host: str = "0.0.0.0") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port_block(count: int, low: int = 20000, high: int = 40000, attempts: int = 200) -> int:
    """A random base in [low, high] such that base .. base+count-1 are all free."""
    for _ in range(attempts):
        base = random.randint(low, high - count + 1)
        if all(port_is_free(p) for p in range(base, base + count)):
            return base
    raise AssertionError(f"no block of {count} free ports found in {low}-{high}")


def connection_refused(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# /proc helpers (Linux)
# --------------------------------------------------------------------------


def server_side_unread_bytes(server_port: int, client_port: int) -> int | None:
    """Bytes the server process has not read yet on the connection from `client_port`.

    Read from /proc/net/tcp{,6} (the rx_queue of the server's socket); None when
    the connection is not found.
    """
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if local_port == server_port and remote_port == client_port:
                return int(fields[4].split(":")[1], 16)
    return None


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    state: str
    starttime: int
    argv: tuple[str, ...]

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X")

    @property
    def exe_name(self) -> str:
        return os.path.basename(self.argv[0]) if self.argv else ""


def proc_info(pid: int) -> ProcInfo | None:
    try:
        with open(f"/proc/{pid}/stat", "r") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    rest = stat[stat.rindex(")") + 2 :].split()
    argv = tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)
    return ProcInfo(pid=pid, ppid=int(rest[1]), state=rest[0], starttime=int(rest[19]), argv=argv)


def all_processes() -> list[ProcInfo]:
    infos = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = proc_info(int(entry))
            if info is not None:
                infos.append(info)
    return infos


def children_of(ppid: int, alive_only: bool = True) -> list[ProcInfo]:
    return [p for p in all_processes() if p.ppid == ppid and (p.alive or not alive_only)]


def descendants_of(pid: int) -> list[ProcInfo]:
    procs = all_processes()
    by_parent: dict[int, list[ProcInfo]] = {}
    for p in procs:
        by_parent.setdefault(p.ppid, []).append(p)
    found, todo = [], [pid]
    while todo:
        for child in by_parent.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def still_running(info: ProcInfo) -> bool:
    """True when the very process `info` describes (same pid and start time) is alive."""
    now = proc_info(info.pid)
    return now is not None and now.starttime == info.starttime and now.alive


# --------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------

_ALL_PROCS: list["Proc"] = []


def _child_env(overrides: dict[str, str | None] | None) -> dict[str, str]:
    """The test's environment without anything that could leak into the run."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("YUNZHEN_")
        and k != "NOTIFY_SOCKET"
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


class Proc:
    """One executable started by a test, with its output in files under tmp_path."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log_dir: Path,
        port: int | None = None,
        cwd: Path | None = None,
    ):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.env = env
        self.log_dir = Path(log_dir)
        self.port = port
        self.cwd = cwd
        self.popen = None
        self.generation = 0
        self._stdout_paths: list[Path] = []
        self._stderr_paths: list[Path] = []
        self._known_descendants: set[ProcInfo] = set()

    # -- life cycle ------------------------------------------------------
    def start(self) -> "Proc":
        if self.popen is not None and self.popen.poll() is None:
            raise AssertionError(f"{self.name} is already running (pid {self.popen.pid})")
        self.generation += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = self.log_dir / f"{self.name}.{self.generation}.stdout.log"
        err = self.log_dir / f"{self.name}.{self.generation}.stderr.log"
        self._stdout_paths.append(out)
        self._stderr_paths.append(err)
        with open(out, "wb") as fo, open(err, "wb") as fe:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=str(self.cwd) if self.cwd else None,
                stdin=subprocess.DEVNULL,
                stdout=fo,
                stderr=fe,
                start_new_session=True,  # own process group: teardown kills the group
            )
        if self not in _ALL_PROCS:
            _ALL_PROCS.append(self)
        return self

    def restart(self) -> "Proc":
        """Start the same command line with the same environment (and port) again."""
        return self.start()

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def url(self) -> str:
        assert self.port is not None, f"{self.name} has no port"
        return f"http://127.0.0.1:{self.port}"

    def poll(self) -> int | None:
        return self.popen.poll() if self.popen else None

    @property
    def returncode(self) -> int | None:
        return self.poll()

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def exit_reason(self) -> str | None:
        """For `wait_until(abort=...)`: a reason when the process has exited."""
        code = self.poll()
        if code is None:
            return None
        return f"{self.name} exited with code {code}\n{self.describe()}"

    def send_signal(self, sig: int) -> None:
        if self.running():
            self.popen.send_signal(sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def interrupt(self) -> None:
        self.send_signal(signal.SIGINT)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} (pid {self.pid}) did not exit within {timeout:g}s\n{self.describe()}"
            ) from None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait, then SIGKILL whatever is left.  Returns the exit code."""
        if self.popen is None:
            return None
        self.terminate()
        try:
            return self.popen.wait(timeout=timeout)
        except Exception:  # noqa: BLE001
            self.cleanup()
            return self.poll()

    def remember_descendants(self) -> list[ProcInfo]:
        """Record the current descendants so cleanup can kill them even if orphaned."""
        if not self.running():
            return []
        found = descendants_of(self.pid)
        self._known_descendants.update(found)
        return found

    def cleanup(self) -> None:
        """Kill the process, its process group and every descendant seen.  Never raises."""
        if self.popen is None:
            return
        try:
            self.remember_descendants()
            if self.popen.poll() is None:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    self.popen.kill()
                except ProcessLookupError:
                    pass
            for info in list(self._known_descendants):
                if still_running(info):
                    try:
                        os.kill(info.pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            try:
                self.popen.wait(timeout=5)
            except Exception:  # noqa: BLE001
                pass
        except Exception:  # noqa: BLE001 - teardown must go on
            pass

    # -- output ----------------------------------------------------------
    @staticmethod
    def _read(paths: Iterable[Path]) -> str:
        chunks = []
        for p in paths:
            try:
                chunks.append(p.read_bytes().decode("utf-8", errors="replace"))
            except FileNotFoundError:
                pass
        return "".join(chunks)

    def stdout_text(self) -> str:
        return self._read(self._stdout_paths)

    def stderr_text(self) -> str:
        return self._read(self._stderr_paths)

    def stdout_lines(self) -> list[str]:
        return self.stdout_text().splitlines()

    def logs(self) -> list[dict]:
        """Every stdout line (of every generation) that is a JSON object."""
        records = []
        for line in self.stdout_lines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                records.append(value)
        return records

    def describe(self, lines: int = 30) -> str:
        return (
            f"--- {self.name} stdout (tail) ---\n{_tail(self.stdout_text(), lines)}\n"
            f"--- {self.name} stderr (tail) ---\n{_tail(self.stderr_text(), lines)}"
        )

    def __repr__(self) -> str:
        return f"<Proc {self.name} pid={self.pid} port={self.port}>"


def _cleanup_all() -> None:
    for proc in list(_ALL_PROCS):
        proc.cleanup()


atexit.register(_cleanup_all)


def pytest_sessionfinish(session, exitstatus):
    _cleanup_all()


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------


def http(method: str, url: str, **kwargs) -> requests.Response:
    """One HTTP request with a timeout, no proxies from the environment and no pooling.

    Sends `Connection: close` unless the caller sets Connection: urllib3 keeps a
    connection open as long as the Response object lives, and an idle keep-alive
    connection left behind by a test would be an accident, not a scenario.
    """
    kwargs.setdefault("timeout", HTTP_TIMEOUT)
    kwargs.setdefault("allow_redirects", False)
    headers = CaseInsensitiveDict({"Connection": "close"})
    headers.update(kwargs.pop("headers", None) or {})
    kwargs["headers"] = headers
    with requests.Session() as session:
        session.trust_env = False
        return session.request(method, url, **kwargs)


def http_status(url: str) -> int | None:
    try:
        return http("GET", url, timeout=2).status_code
    except requests.RequestException:
        return None


@dataclass
class RawResponse:
    status_code: int
    reason: str
    header_list: list[tuple[str, str]]
    content: bytes
    headers: CaseInsensitiveDict = field(default_factory=CaseInsensitiveDict)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class RawConnection:
    """A plain TCP connection for requests that `requests` would normalise."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = HTTP_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self._buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no complete HTTP response before the deadline")
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self._buffer += chunk
        return True

    def _read_until(self, marker: bytes, deadline: float) -> bytes:
        while marker not in self._buffer:
            if not self._fill(deadline):
                raise ConnectionError(f"connection closed before {marker!r}; got {self._buffer[:200]!r}")
        head, _, self._buffer = self._buffer.partition(marker)
        return head

    def _read_exactly(self, n: int, deadline: float) -> bytes:
        while len(self._buffer) < n:
            if not self._fill(deadline):
                raise ConnectionError("connection closed inside the body")
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def read_response(self, timeout: float | None = None, method: str = "GET") -> RawResponse:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            head = self._read_until(b"\r\n\r\n", deadline).decode("iso-8859-1")
            lines = head.split("\r\n")
            parts = lines[0].split(" ", 2)
            status = int(parts[1])
            reason = parts[2] if len(parts) > 2 else ""
            header_list = []
            for line in lines[1:]:
                name, _, value = line.partition(":")
                header_list.append((name.strip(), value.strip()))
            if 100 <= status < 200:
                continue  # 100 Continue and friends
            break
        headers = CaseInsensitiveDict()
        for name, value in header_list:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif "chunked" in headers.get("Transfer-Encoding", "").lower():
            body = b""
            while True:
                size_line = self._read_until(b"\r\n", deadline)
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self._read_until(b"\r\n", deadline):
                        pass  # trailers
                    break
                body += self._read_exactly(size, deadline)
                self._read_until(b"\r\n", deadline)
        elif "Content-Length" in headers:
            body = self._read_exactly(int(headers["Content-Length"]), deadline)
        else:
            while self._fill(deadline):
                pass
            body, self._buffer = self._buffer, b""
        return RawResponse(status, reason, header_list, body, headers)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "RawConnection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def raw_request(port: int, data: bytes, host: str = "127.0.0.1", timeout: float = HTTP_TIMEOUT) -> RawResponse:
    with RawConnection(port, host=host, timeout=timeout) as conn:
        conn.send(data)
        return conn.read_response(timeout=timeout)


def raw_get(port: int, target: str, extra_headers: str = "") -> RawResponse:
    """`GET <target>` sent byte for byte, exactly as written (no normalisation)."""
    request = (
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra_headers}Connection: close\r\n\r\n"
    ).encode("ascii")
    return raw_request(port, request)


# --------------------------------------------------------------------------
# problem+json
# --------------------------------------------------------------------------


def assert_problem(response, status: int | Iterable[int], detail_required: bool = True) -> dict:
    """Check an RFC 9457 problem as the contract describes it; return the body."""
    statuses = {status} if isinstance(status, int) else set(status)
    body_preview = response.content[:500]
    assert response.status_code in statuses, (
        f"expected status {sorted(statuses)}, got {response.status_code}: {body_preview!r}"
    )
    content_type = response.headers.get("Content-Type", "")
    assert content_type.split(";")[0].strip().lower() == PROBLEM_CONTENT_TYPE, (
        f"expected Content-Type {PROBLEM_CONTENT_TYPE}, got {content_type!r}: {body_preview!r}"
    )
    body = response.json()
    assert isinstance(body, dict), body
    assert body.get("status") == response.status_code, body
    assert isinstance(body.get("type"), str) and body["type"].startswith(PROBLEM_TYPE_PREFIX), body
    assert isinstance(body.get("code"), str) and body["type"] == PROBLEM_TYPE_PREFIX + body["code"], body
    assert isinstance(body.get("title"), str) and body["title"].strip(), body
    assert "detail" in body and isinstance(body["detail"], str), body
    if detail_required:
        assert body["detail"].strip(), f"problem detail is empty: {body}"
    request_id = response.headers.get("X-Request-ID")
    if request_id is not None:
        assert body.get("requestId") == request_id, (
            f"problem requestId {body.get('requestId')!r} != X-Request-ID header {request_id!r}"
        )
    return body


# --------------------------------------------------------------------------
# fake upstreams (Python servers standing in for a service)
# --------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    method: str
    path: str
    header_list: list[tuple[str, str]]
    body: bytes

    @property
    def headers(self) -> CaseInsensitiveDict:
        headers = CaseInsensitiveDict()
        for name, value in self.header_list:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return headers

    def has_header(self, name: str) -> bool:
        return any(n.lower() == name.lower() for n, _ in self.header_list)


class _RecordingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_RecordingServer"

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        upstream = self.server.upstream
        record = RecordedRequest(self.command, self.path, list(self.headers.items()), self._read_body())
        upstream._record(record)
        if upstream.delay:
            # The simulated slowness of this fake upstream, not a wait for something.
            time.sleep(upstream.delay)
        status, headers, body = upstream.response
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class _RecordingServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    upstream: "FakeUpstream"


class FakeUpstream:
    """An HTTP server in a thread that records requests and answers a fixed response."""

    def __init__(
        self,
        status: int = 200,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b'{"ok":true}',
        delay: float = 0.0,
    ):
        self.response = (status, headers or [("Content-Type", "application/json")], body)
        self.delay = delay
        self.requests: list[RecordedRequest] = []
        self.received = threading.Event()
        self._lock = threading.Lock()
        self.server = _RecordingServer(("127.0.0.1", 0), _RecordingHandler)
        self.server.upstream = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _record(self, record: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(record)
        self.received.set()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class BlackHoleUpstream:
    """Accepts TCP connections and never answers."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.accepted = threading.Event()
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            self._conns.append(conn)
            self.accepted.set()

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
        for conn in self._conns:
            conn.close()
        self.listener.close()


# --------------------------------------------------------------------------
# launching the executables
# --------------------------------------------------------------------------


def _bin_dir() -> Path:
    configured = os.environ.get("YUNZHEN_BIN")
    if not configured:
        return REPO / ".build" / "debug"
    path = Path(configured)
    if path.is_absolute():
        return path
    if (Path.cwd() / path).is_dir():
        return (Path.cwd() / path).resolve()
    return (REPO / path).resolve()


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    path = _bin_dir()
    missing = [name for name in EXECUTABLES if not (path / name).is_file()]
    if missing:
        pytest.fail(
            f"yunzhen executables not found in {path} (missing: {', '.join(missing)}); "
            "build first (`swift build`) or set YUNZHEN_BIN",
            pytrace=False,
        )
    return path


class Launcher:
    """Starts yunzhen executables for one test and kills them all afterwards."""

    def __init__(self, bin_dir: Path, tmp_path: Path, node: pytest.Item):
        self.bin_dir = bin_dir
        self.tmp_path = tmp_path
        self.log_dir = tmp_path / "logs"
        self.procs: list[Proc] = []
        self._node = node
        node._e2e_procs = self.procs  # for failure reports

    def executable(self, name: str) -> Path:
        path = self.bin_dir / name
        if not path.is_file():
            pytest.fail(f"executable {path} does not exist", pytrace=False)
        return path

    def start(
        self,
        name: str,
        executable: str,
        env: dict[str, str | None] | None = None,
        args: Iterable[str] = (),
        port: int | None = None,
        cwd: Path | None = None,
    ) -> Proc:
        proc = Proc(
            name,
            [str(self.executable(executable)), *args],
            _child_env(env),
            self.log_dir,
            port=port,
            cwd=cwd or self.tmp_path,
        )
        self.procs.append(proc)
        return proc.start()

    def service(
        self,
        name: str,
        data_dir: Path | None = None,
        port: int | None = None,
        env: dict[str, str | None] | None = None,
        wait: bool = True,
    ) -> Proc:
        port = port or free_port()
        base = {
            "YUNZHEN_DATA": str(data_dir or self.tmp_path / "data"),
            "YUNZHEN_HOST": "127.0.0.1",
            "YUNZHEN_PORT": str(port),
            "YUNZHEN_LOG_FORMAT": "json",
            "YUNZHEN_AUTH_VERIFY_KEYS": TEST_VERIFY_KEYS,
        }
        if name == "registration":
            base.update(REGISTRATION_ENV)
        base.update(env or {})
        proc = self.start(name, name, env=base, port=port)
        if wait:
            wait_ready(proc)
        return proc

    def edge(
        self,
        upstreams: dict[str, str] | None = None,
        port: int | None = None,
        env: dict[str, str | None] | None = None,
        wait: bool = True,
        name: str = "edge",
    ) -> Proc:
        """An edge; services not in `upstreams` point at a port where nothing listens."""
        port = port or free_port()
        nowhere = f"http://127.0.0.1:{free_port()}"
        base = {
            "YUNZHEN_HOST": "127.0.0.1",
            "YUNZHEN_PORT": str(port),
            "YUNZHEN_LOG_FORMAT": "json",
            "YUNZHEN_EDGE_PUBLIC_DIR": str(PUBLIC_DIR),
            "YUNZHEN_AUTH_VERIFY_KEYS": TEST_VERIFY_KEYS,
        }
        for service in SERVICES:
            base[f"YUNZHEN_UPSTREAM_{service.upper()}"] = (upstreams or {}).get(service, nowhere)
        base.update(env or {})
        proc = self.start(name, "edge", env=base, port=port)
        if wait:
            wait_ready(proc, path="/health/live")
        return proc

    def cleanup(self) -> None:
        # Ask politely and together, then kill whatever is left (and its group).
        for proc in self.procs:
            if proc.running():
                proc.remember_descendants()
                proc.terminate()
        deadline = time.monotonic() + 5
        for proc in self.procs:
            if proc.popen is not None:
                try:
                    proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
                except Exception:  # noqa: BLE001
                    pass
            proc.cleanup()


def wait_ready(proc: Proc, path: str = "/health/ready", timeout: float = START_TIMEOUT) -> None:
    wait_until(
        lambda: http_status(proc.url + path) == 200,
        timeout=timeout,
        interval=0.1,
        message=f"{proc.name} to answer 200 on {path} at {proc.url}",
        abort=proc.exit_reason,
    )


@pytest.fixture
def launcher(bin_dir: Path, tmp_path: Path, request: pytest.FixtureRequest):
    launcher = Launcher(bin_dir, tmp_path, request.node)
    try:
        yield launcher
    finally:
        launcher.cleanup()


@pytest.fixture
def fake_upstreams():
    """Factory for recording / never-answering Python upstreams, closed at teardown."""
    made: list[Any] = []

    class Factory:
        @staticmethod
        def recording(**kwargs) -> FakeUpstream:
            upstream = FakeUpstream(**kwargs)
            made.append(upstream)
            return upstream

        @staticmethod
        def black_hole() -> BlackHoleUpstream:
            upstream = BlackHoleUpstream()
            made.append(upstream)
            return upstream

    try:
        yield Factory
    finally:
        for upstream in made:
            try:
                upstream.close()
            except Exception:  # noqa: BLE001
                pass


# --------------------------------------------------------------------------
# the platform: five services and the edge
# --------------------------------------------------------------------------


class Platform:
    def __init__(self, launcher: Launcher):
        self.launcher = launcher
        self.data_dir = launcher.tmp_path / "data"
        self.services: dict[str, Proc] = {}
        self.edge: Proc | None = None

    def start(self) -> "Platform":
        ports = free_ports(len(SERVICES) + 1)
        for name, port in zip(SERVICES, ports):
            self.services[name] = self.launcher.service(name, self.data_dir, port=port, wait=False)
        for proc in self.services.values():
            wait_ready(proc)
        self.edge = self.start_edge(port=ports[-1])
        self.wait_healthy()
        return self

    def seed(self, timeout: float = 120) -> str:
        """`yunzhen seed` with the repository's seeds against this platform, as `make run` loads them; its output."""
        result = subprocess.run(
            [str(self.launcher.bin_dir / "yunzhen"), "seed", "--edge", self.url, "--seeds", str(REPO / "seeds"),
             "--registration", self.services["registration"].url],
            env={**os.environ, "YUNZHEN_AUTH_SIGNING_KEY": TEST_SIGNING_KEY},
            capture_output=True, text=True, timeout=timeout,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def start_edge(
        self,
        env: dict[str, str | None] | None = None,
        upstreams: dict[str, str] | None = None,
        port: int | None = None,
        name: str = "edge",
    ) -> Proc:
        targets = {name_: proc.url for name_, proc in self.services.items()}
        targets.update(upstreams or {})
        # Every test signs in from 127.0.0.1: the per-address sign-in limit is tested on an edge of its own.
        return self.launcher.edge(
            targets, port=port, env={"YUNZHEN_EDGE_SIGN_IN_PER_MINUTE": "1000", **(env or {})}, name=name
        )

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        assert self.edge is not None
        wait_until(
            lambda: http_status(self.url + "/health") == 200,
            timeout=timeout,
            interval=0.1,
            message="the edge's /health to be 200",
            abort=self.edge.exit_reason,
        )

    @property
    def url(self) -> str:
        assert self.edge is not None
        return self.edge.url

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return http(method, self.url + path, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, **kwargs) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def auth(self) -> dict[str, str]:
        """An admin's Authorization (catalogue writes, staff administration)."""
        return admin_headers()

    def stop(self) -> None:
        procs = [p for p in [self.edge, *self.services.values()] if p is not None]
        for proc in procs:
            proc.terminate()
        deadline = time.monotonic() + 10
        for proc in procs:
            if proc.popen is not None:
                try:
                    proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
                except Exception:  # noqa: BLE001
                    proc.cleanup()


@pytest.fixture
def platform(launcher: Launcher):
    """The five services (one data root) and an edge in front of them, all ready."""
    plat = Platform(launcher)
    try:
        plat.start()
        yield plat
    finally:
        plat.stop()  # the launcher fixture then kills anything left
