"""`yunzhen dev`: supervises the six processes, restarts a crashed one, stops them all.

See conftest.py for how to run these tests.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from conftest import (
    REPO,
    SERVICES,
    children_of,
    connection_refused,
    free_port,
    free_port_block,
    http,
    http_status,
    still_running,
    wait_until,
)

SUPERVISED = SERVICES + ("edge",)


def launch_dev(launcher, tmp_path):
    """Start `yunzhen dev` on a free random port block; returns (proc, data dir) at once."""
    base = free_port_block(6)  # base .. base+5: the services use base+1 .. base+5
    edge_port = free_port("0.0.0.0")
    while base <= edge_port <= base + 5:
        edge_port = free_port("0.0.0.0")
    data = tmp_path / "dev-data"
    dev = launcher.start(
        "yunzhen-dev",
        "yunzhen",
        args=[
            "dev",
            "--data", str(data),
            "--bin", str(launcher.bin_dir),
            "--edge-port", str(edge_port),
            "--service-port-base", str(base),
        ],
        port=edge_port,
        cwd=REPO,  # as a developer runs it, from the repository root
    )
    return dev, data


def start_dev(launcher, tmp_path):
    """`yunzhen dev`, once the edge's /health is 200."""
    dev, data = launch_dev(launcher, tmp_path)
    wait_until(
        lambda: http_status(dev.url + "/health") == 200,
        timeout=90,
        interval=0.2,
        message=lambda: f"the edge's /health to be 200 under yunzhen dev\n{dev.describe()}",
        abort=dev.exit_reason,
    )
    dev.remember_descendants()
    return dev, data


def children_named(dev, name: str):
    return [child for child in children_of(dev.pid) if child.exe_name == name]


def stop_and_check_everything_exits(dev, sig: int) -> None:
    children = dev.remember_descendants()
    assert children, "yunzhen dev has no children to stop"
    signalled = time.monotonic()
    dev.send_signal(sig)
    code = dev.wait(15)
    assert code == 0, f"yunzhen dev exited with {code}\n{dev.describe()}"
    left = max(1.0, signalled + 15 - time.monotonic())
    wait_until(
        lambda: not any(still_running(child) for child in children),
        timeout=left,
        message=lambda: "every child of yunzhen dev to exit; still running: "
        + ", ".join(f"{c.exe_name}[{c.pid}]" for c in children if still_running(c)),
    )
    assert children_of(dev.pid) == []
    assert connection_refused(dev.port), "the edge port still accepts connections"


@pytest.mark.deadline(240)
def test_yunzhen_dev_supervises_restarts_a_killed_child_and_stops_all_on_sigint(launcher, tmp_path):
    dev, data = start_dev(launcher, tmp_path)

    names = {child.exe_name for child in children_of(dev.pid)}
    assert set(SUPERVISED) <= names, f"children of yunzhen dev: {sorted(names)}"
    assert (data / "registration" / "registration.sqlite").is_file()

    for name in ("registration", "edge"):
        wait_until(
            lambda: any(f"[{name}]" in line for line in dev.stdout_lines()),
            timeout=10,
            message=lambda: f"a stdout line of yunzhen dev prefixed with [{name}]\n{dev.describe()}",
        )

    killed = wait_until(lambda: children_named(dev, "registration"), timeout=10, message="the registration child")
    assert len(killed) == 1, killed
    os.kill(killed[0].pid, signal.SIGKILL)

    restarted = wait_until(
        lambda: [c for c in children_named(dev, "registration") if c.pid != killed[0].pid],
        timeout=60,
        interval=0.1,
        message=lambda: f"yunzhen dev to start a new registration\n{dev.describe()}",
        abort=dev.exit_reason,
    )
    assert len(restarted) == 1, restarted
    wait_until(
        lambda: http_status(dev.url + "/health") == 200,
        timeout=60,
        interval=0.2,
        message="the edge's /health to be 200 again after the restart",
        abort=dev.exit_reason,
    )
    assert http("GET", dev.url + "/api/registration/departments").status_code == 200

    stop_and_check_everything_exits(dev, signal.SIGINT)


@pytest.mark.deadline(120)
def test_yunzhen_dev_stops_promptly_on_sigterm_during_start_up(launcher, tmp_path):
    # E.g. a developer presses Ctrl-C (or a service cannot start) before the platform is
    # ready: stopping must not wait for the start-up to finish or give up.
    dev, _ = launch_dev(launcher, tmp_path)
    wait_until(
        lambda: set(SUPERVISED) <= {child.exe_name for child in children_of(dev.pid)},
        timeout=30,
        message=lambda: f"yunzhen dev to launch all six\n{dev.describe()}",
        abort=dev.exit_reason,
    )
    stop_and_check_everything_exits(dev, signal.SIGTERM)
