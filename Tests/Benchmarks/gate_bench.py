#!/usr/bin/env python3
"""Gate benchmark: entry passes checked per second at the door through the edge, against the disk's fsync rate,
and how fast a patient's pass (QR code drawn by our own encoder) is served.

Every admitted check is a committed transaction (the entry, its audit row) with `synchronous=FULL`, so the disk's
fsync rate bounds it: the benchmark measures that rate in the same data directory, in the same run, and prints the
ratio. The passes are written straight into screening's database (as many passed screenings would leave them) and
their tokens signed here with the pass key, following the token format of `EntryPass/PassToken.swift`: the gate's
acceptance of them is also a check of that format from an independent implementation.

    python3 Tests/Benchmarks/gate_bench.py [--bin .build/release] [--clients 8] [--seconds 8] [--rounds 3]

Run it on a release build (`swift build -c release`); it starts its own screening and edge on free loopback ports
with a throwaway data directory (`make bench-gate` does both).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import hmac
import os
import secrets
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from booking_bench import REPO, Keys, free_port, percentile, start, wait_ready  # noqa: E402

PASSES = 60_000
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def sqlite_time(moment: datetime.datetime) -> str:
    """GRDB's storage format for dates: UTC, milliseconds."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def token(key_id: bytes, key: bytes, pass_id: bytes, valid_from: int, expires_at: int, patient: str) -> str:
    fields = (key_id + pass_id + valid_from.to_bytes(4, "big") + expires_at.to_bytes(4, "big")
              + patient.encode())
    tag = hmac.new(key, b"YZP1." + fields, hashlib.sha256).digest()[:16]
    return "YZP1." + base64.b32encode(fields + tag).decode().rstrip("=")


def write_passes(database: Path, count: int) -> list[tuple[str, str, str]]:
    """`count` passed screenings with their passes, valid now: (token, screening id, account id) each."""
    key_id, key = secrets.token_bytes(4), secrets.token_bytes(32)
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)  # tokens carry whole seconds
    valid_from, expires_at = now - datetime.timedelta(hours=1), now + datetime.timedelta(hours=23)
    visit = now + datetime.timedelta(hours=1)
    passes, screenings, tokens, codes = [], [], [], set()
    for index in range(count):
        screening, account, patient = f"scr_bench{index:07d}", f"acct_bench{index % 500:04d}", f"pat_bench{index:07d}"
        pass_id = secrets.token_bytes(10)
        while (code := "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))) in codes:
            pass
        codes.add(code)
        screenings.append((screening, f"apt_bench{index:07d}", patient, account, sqlite_time(visit),
                           sqlite_time(visit + datetime.timedelta(hours=3)), sqlite_time(now),
                           sqlite_time(visit + datetime.timedelta(hours=3)), sqlite_time(now)))
        passes.append((f"pass_{pass_id.hex()}", screening, patient, visit.astimezone(
            datetime.timezone(datetime.timedelta(hours=8))).date().isoformat(), key_id.hex(),
            sqlite_time(valid_from), sqlite_time(expires_at), code, sqlite_time(now)))
        tokens.append((token(key_id, key, pass_id, int(valid_from.timestamp()), int(expires_at.timestamp()), patient),
                       screening, account))
    with sqlite3.connect(database, timeout=30) as connection:
        connection.execute("INSERT INTO pass_key (id, secret, created_at) VALUES (?, ?, ?)",
                           (key_id.hex(), key, sqlite_time(now - datetime.timedelta(days=1))))
        connection.executemany(
            "INSERT INTO screening (id, appointment_id, patient_id, account_id, visit_start, visit_end, opens_at, "
            "closes_at, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'passed', ?)", screenings)
        connection.executemany(
            "INSERT INTO entry_pass (id, screening_id, patient_id, visit_date, key_id, valid_from, expires_at, code, "
            "issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", passes)
    return tokens


def fsync_rate(directory: Path, seconds: float = 3) -> float:
    """4 KiB appended and fsynced, as often as the disk allows in `seconds`: syncs per second."""
    path = directory / "fsync-probe"
    count = 0
    with path.open("ab") as file:
        stop_at = time.monotonic() + seconds
        while time.monotonic() < stop_at:
            file.write(b"\0" * 4096)
            file.flush()
            os.fsync(file.fileno())
            count += 1
    path.unlink()
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=".build/release")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bin_dir = (REPO / args.bin) if not Path(args.bin).is_absolute() else Path(args.bin)

    keys = Keys()
    work = Path(tempfile.mkdtemp(prefix="yunzhen-gate-bench-"))
    screening_port, edge_port = free_port(), free_port()
    screening = start(bin_dir / "screening", {
        "YUNZHEN_DATA": str(work / "data"), "YUNZHEN_PORT": str(screening_port), "YUNZHEN_LOG_LEVEL": "warning",
        "YUNZHEN_AUTH_VERIFY_KEYS": keys.verify,
    }, work / "screening.log")
    edge = start(bin_dir / "edge", {
        "YUNZHEN_PORT": str(edge_port), "YUNZHEN_LOG_LEVEL": "warning", "YUNZHEN_AUTH_VERIFY_KEYS": keys.verify,
        "YUNZHEN_UPSTREAM_SCREENING": f"http://127.0.0.1:{screening_port}",
    }, work / "edge.log")
    try:
        wait_ready(f"http://127.0.0.1:{screening_port}/health/ready", screening, work / "screening.log")
        wait_ready(f"http://127.0.0.1:{edge_port}/health/live", edge, work / "edge.log")
        run(args, keys, f"http://127.0.0.1:{edge_port}", work / "data")
    finally:
        for process in (edge, screening):
            process.terminate()
            process.wait(timeout=15)
        shutil.rmtree(work, ignore_errors=True)


def run(args, keys: Keys, edge: str, data: Path) -> None:
    tokens = write_passes(data / "screening" / "screening.sqlite", PASSES)
    print(f"setup: {len(tokens)} passes valid now")
    gate = {"Authorization": f"Bearer {keys.token('staff_gate_bench', 'staff', ['gate'])}"}
    next_pass = iter(range(len(tokens)))
    lock = threading.Lock()
    figures = []
    for round_number in range(args.rounds):
        latencies: list[float] = []
        refused = 0
        stop_at = time.monotonic() + args.seconds

        def client() -> None:
            nonlocal refused
            http = requests.Session()
            while time.monotonic() < stop_at:
                with lock:
                    index = next(next_pass, None)
                if index is None:
                    return
                started = time.monotonic()
                checked = http.post(f"{edge}/api/screening/gate/checks", headers=gate,
                                    json={"pass": tokens[index][0], "gate": "门诊楼东门"})
                if checked.status_code == 201:
                    latencies.append(time.monotonic() - started)
                else:
                    with lock:
                        refused += 1
                        if refused == 1:
                            print(f"refused: {checked.status_code} {checked.text}")

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began
        if refused or not latencies:
            sys.exit(f"{refused} valid passes refused: the benchmark's token format and the gate disagree")
        rate = len(latencies) / elapsed
        figures.append((rate, percentile(latencies, 0.5), percentile(latencies, 0.99)))
        print(f"round {round_number + 1}: {len(latencies)} admitted ({refused} refused) in {elapsed:.1f} s: "
              f"{rate:.0f}/s, p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
              f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms")
    syncs = fsync_rate(data)
    rate = statistics.median(figure[0] for figure in figures)
    print(f"gate checks through the edge ({args.clients} clients, median of {args.rounds}): {rate:.0f}/s, "
          f"p50 {statistics.median(f[1] for f in figures) * 1000:.1f} ms, "
          f"p99 {statistics.median(f[2] for f in figures) * 1000:.1f} ms")
    print(f"disk fsync rate in the same directory: {syncs:.0f}/s; checks per fsync: {rate / syncs:.2f}")

    # The patient's side: the pass with its QR code (encoded, masked eight ways, drawn as PNG) on each request.
    latencies = []
    for _, screening, account in tokens[:300]:
        headers = {"Authorization": f"Bearer {keys.token(account, 'patient', ['patient'])}"}
        started = time.monotonic()
        shown = requests.get(f"{edge}/api/screening/screenings/{screening}/pass", headers=headers)
        latencies.append(time.monotonic() - started)
        if shown.status_code != 200:
            sys.exit(f"GET pass: {shown.status_code} {shown.text}")
    print(f"a patient's pass with its QR code, one client: p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
