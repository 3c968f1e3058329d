"""The queue under SIGKILL: a producer (service transaction + outbox + relay) and a consumer (handler + offset in
one transaction) are killed at random instants and restarted, many times; afterwards every committed change was
applied exactly once and nothing that was not committed appears.

The soak length is QUEUE_SOAK_CYCLES (default 30) kill cycles of QUEUE_SOAK_COUNT (default 3000) events; a longer
soak is the same test with larger values, e.g. QUEUE_SOAK_CYCLES=500 QUEUE_SOAK_COUNT=100000.
"""

import json
import os
import random
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import Proc, _child_env, wait_until

CYCLES = int(os.environ.get("QUEUE_SOAK_CYCLES", "30"))
COUNT = int(os.environ.get("QUEUE_SOAK_COUNT", "3000"))


def _rows(database, sql):
    connection = sqlite3.connect(database)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


@pytest.mark.deadline(300 + CYCLES * 5)
def test_every_committed_event_is_applied_exactly_once_across_random_kills(bin_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    soak = str(bin_dir / "queue-soak")
    producer = Proc("producer", [soak, "produce", data, COUNT], _child_env(None), tmp_path / "logs")
    consumer = Proc("consumer", [soak, "consume", data, COUNT], _child_env(None), tmp_path / "logs")
    producer.start()
    consumer.start()
    rng = random.Random(int(os.environ.get("QUEUE_SOAK_SEED", str(time.time_ns()))))
    kills = {"producer": 0, "consumer": 0}
    for _ in range(CYCLES):
        time.sleep(rng.uniform(0.02, 0.3))
        victims = rng.choice([[producer], [consumer], [producer, consumer]])
        for victim in victims:
            if victim.running():
                os.kill(victim.pid, signal.SIGKILL)
                victim.popen.wait(timeout=10)
                kills[victim.name] += 1
        for victim in victims:
            # A finished producer or consumer (exit 0) stays finished; a killed one starts again.
            if victim.returncode != 0:
                victim.start()

    for process in (producer, consumer):
        if not process.running() and process.returncode != 0:
            process.start()
    wait_until(lambda: producer.returncode is not None and consumer.returncode is not None, timeout=120,
               message="producer and consumer did not finish")
    assert producer.returncode == 0, f"producer exited {producer.returncode}"
    assert consumer.returncode == 0, f"consumer exited {consumer.returncode}"
    assert kills["producer"] + kills["consumer"] >= CYCLES // 2, f"too few kills landed: {kills}"

    ledger = [number for (number,) in _rows(data / "producer.sqlite", "SELECT number FROM ledger ORDER BY number")]
    assert ledger == list(range(1, COUNT + 1)), "the producer's own committed changes are not 1..COUNT"
    applied = _rows(data / "consumer.sqlite", "SELECT number, count(*) FROM applied GROUP BY number ORDER BY number")
    duplicates = [(number, times) for number, times in applied if times != 1]
    assert duplicates == [], f"applied more than once: {duplicates[:10]}"
    assert [number for number, _ in applied] == ledger, "applied events differ from committed changes"
    assert _rows(data / "producer.sqlite", "SELECT count(*) FROM queue_outbox") == [(0,)]
    assert _rows(data / "consumer.sqlite", "SELECT count(*) FROM queue_dead_letter") == [(0,)]

    # The operator's view agrees: every segment intact, every event there once, in order.
    yunzhen = str(bin_dir / "yunzhen")
    verify = subprocess.run([yunzhen, "queue", "verify", "--data", data], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    tail = subprocess.run([yunzhen, "queue", "tail", "soak", "--data", data, "--from", "0"],
                          capture_output=True, text=True, timeout=60)
    events = [json.loads(line) for line in tail.stdout.splitlines()]
    assert [event["offset"] for event in events] == list(range(COUNT))
    assert sorted(event["event"]["data"]["number"] for event in events) == ledger


def test_queue_verify_names_a_damaged_record_and_tail_skips_it(bin_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    producer = Proc("producer", [str(bin_dir / "queue-soak"), "produce", data, 20], _child_env(None), tmp_path / "logs")
    producer.start()
    assert producer.wait(60) == 0
    segment = data / "queue" / "soak" / "00000000000000000000.log"
    content = bytearray(segment.read_bytes())
    tenth = content.find(b'"number":10}')
    assert tenth > 0
    content[tenth + 3] ^= 0x01  # one flipped bit inside record 9's payload
    segment.write_bytes(bytes(content))

    yunzhen = str(bin_dir / "yunzhen")
    verify = subprocess.run([yunzhen, "queue", "verify", "--data", data], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 1
    assert "damaged at bytes" in verify.stdout
    tail = subprocess.run([yunzhen, "queue", "tail", "soak", "--data", data, "--from", "0"],
                          capture_output=True, text=True, timeout=60)
    offsets = [json.loads(line)["offset"] for line in tail.stdout.splitlines()]
    assert offsets == [offset for offset in range(20) if offset != 9]
    assert "offset 9 is damaged" in tail.stderr


def test_a_saved_department_reaches_integrators_through_the_registration_topic(platform, bin_dir):
    """The path an integrator uses: a change through the edge, its event durable in the topic, tailed as JSON."""
    headers = {**platform.auth(), "Content-Type": "application/json"}
    body = json.dumps({"name": "肾内科", "nameEn": "Nephrology", "description": "e2e"})
    assert platform.put("/api/registration/departments/e2e-topic", data=body, headers=headers).status_code == 201
    assert platform.put("/api/registration/departments/e2e-topic", data=body, headers=headers).status_code == 200
    # Refused writes publish nothing.
    assert platform.put("/api/registration/departments/e2e-topic", data=body).status_code == 401

    def tailed():
        result = subprocess.run(
            [str(bin_dir / "yunzhen"), "queue", "tail", "registration", "--from", "0", "--data", str(platform.data_dir)],
            capture_output=True, text=True, timeout=30,
        )
        return [json.loads(line) for line in result.stdout.splitlines()]

    events = wait_until(lambda: (lambda found: found if len(found) >= 2 else None)(tailed()), timeout=10,
                        message="two department-saved events in the registration topic")
    assert [event["event"]["type"] for event in events] == ["registration.department-saved.v1"] * 2
    assert [event["event"]["data"]["created"] for event in events] == [True, False]
    assert {event["event"]["subject"] for event in events} == {"e2e-topic"}
    assert events[0]["event"]["id"] != events[1]["event"]["id"]
