#!/usr/bin/env python3
"""Booking benchmark: confirmed bookings per second through the edge with the sandbox payment provider, and the
race of 200 clients for the last 5 places of a session.

A confirmed booking is the whole patient path: `POST /appointments` (the place is held, the order opened at the
provider), paying on the provider's cashier page, and the provider's signed notification reaching registration
(over libcurl) and confirming the appointment; its latency runs from the booking request until the appointment
reads `confirmed`. Each client books, pays and polls in turn; the figures are medians over ROUNDS rounds.

    python3 Tests/Benchmarks/booking_bench.py [--bin .build/release] [--clients 16] [--seconds 10] [--rounds 3]

Run it on a release build (`swift build -c release`); it starts its own registration and edge on free loopback
ports with a throwaway data directory, and needs `requests` and `cryptography` (`make test-deps` installs them).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

REPO = Path(__file__).resolve().parents[2]
BEIJING = datetime.timezone(datetime.timedelta(hours=8))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Keys:
    """A throwaway Ed25519 key: registration signs with it, the benchmark mints admin and patient tokens."""

    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        seed = self.private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        public = self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.signing = "bench:" + base64.b64encode(seed).decode()
        self.verify = "bench:" + base64.b64encode(public).decode()

    def token(self, subject: str, kind: str, roles: list[str], departments: list[str] | None = None) -> str:
        now = int(time.time())
        header = {"alg": "EdDSA", "kid": "bench", "typ": "JWT"}
        claims = {"iss": "yunzhen", "aud": ["yunzhen-services"], "sub": subject, "iat": now, "exp": now + 3600,
                  "jti": uuid.uuid4().hex, "kind": kind, "roles": roles}
        if departments:
            claims["departments"] = departments
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        return f"{signing_input}.{b64(self.private.sign(signing_input.encode()))}"


def start(binary: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([str(binary)], env={**os.environ, **env}, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_ready(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{url} exited:\n{log.read_text()[-2000:]}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    sys.exit(f"{url} not ready in 60 s:\n{log.read_text()[-2000:]}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=".build/release")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bin_dir = (REPO / args.bin) if not Path(args.bin).is_absolute() else Path(args.bin)

    keys = Keys()
    work = Path(tempfile.mkdtemp(prefix="yunzhen-booking-bench-"))
    registration_port, edge_port = free_port(), free_port()
    registration = start(bin_dir / "registration", {
        "YUNZHEN_DATA": str(work / "data"), "YUNZHEN_PORT": str(registration_port), "YUNZHEN_LOG_LEVEL": "warning",
        "YUNZHEN_ENVIRONMENT": "development", "YUNZHEN_AUTH_SIGNING_KEY": keys.signing,
        # The wrk run holds places without paying, many per patient: lift the per-account limit of unpaid holds.
        "YUNZHEN_BOOKING_MAX_HOLDS": "100000",
    }, work / "registration.log")
    edge = start(bin_dir / "edge", {
        "YUNZHEN_PORT": str(edge_port), "YUNZHEN_LOG_LEVEL": "warning", "YUNZHEN_AUTH_VERIFY_KEYS": keys.verify,
        "YUNZHEN_UPSTREAM_REGISTRATION": f"http://127.0.0.1:{registration_port}",
    }, work / "edge.log")
    try:
        wait_ready(f"http://127.0.0.1:{registration_port}/health/ready", registration, work / "registration.log")
        wait_ready(f"http://127.0.0.1:{edge_port}/health/live", edge, work / "edge.log")
        run(args, keys, f"http://127.0.0.1:{edge_port}", work / "data" / "registration" / "registration.sqlite")
    finally:
        for process in (edge, registration):
            process.terminate()
            process.wait(timeout=15)
        shutil.rmtree(work, ignore_errors=True)


def run(args, keys: Keys, edge: str, database: Path) -> None:
    admin = {"Authorization": f"Bearer {keys.token('operator:bench', 'staff', ['admin'])}"}
    scheduler = {"Authorization": f"Bearer {keys.token('staff_bench', 'staff', ['scheduler'], ['hematology'])}"}
    put = requests.put(f"{edge}/api/registration/departments/hematology", headers=admin,
                       json={"name": "血液科", "nameEn": "Hematology", "description": ""})
    put.raise_for_status()
    doctors = [f"bench-doctor-{index}" for index in range(4)]
    for doctor in doctors:
        requests.put(f"{edge}/api/registration/admin/doctors/{doctor}", headers=admin, json={
            "departmentId": "hematology", "name": "测试医生", "title": "attending", "specialties": [],
            "introduction": "", "fees": {"outpatient": 5000},
        }).raise_for_status()
    today = datetime.datetime.now(BEIJING).date()
    days = [(today + datetime.timedelta(days=offset)).isoformat() for offset in range(1, 7)]
    sessions = []
    for doctor in doctors:
        for day in days:
            for period in ("morning", "afternoon", "evening"):
                made = requests.post(f"{edge}/api/registration/sessions", headers=scheduler, json={
                    "doctorId": doctor, "date": day, "period": period, "visitType": "outpatient", "places": 200})
                made.raise_for_status()
                sessions.append(made.json()["id"])

    # Patients: accounts written as sign-up writes them, profiles through the edge.
    # Booking k goes to session k mod S for patient k div S: every pair is new, and the sessions fill evenly.
    accounts = [f"acct_bench{index:05d}" for index in range(200)]
    with sqlite3.connect(database, timeout=30) as connection:
        connection.executemany("INSERT INTO account (id, phone, created_at) VALUES (?, ?, ?)", [
            (account, f"136{index:08d}", "2026-01-01 00:00:00.000") for index, account in enumerate(accounts)])
    
    def profile(account: str) -> tuple[dict, str]:
        headers = {"Authorization": f"Bearer {keys.token(account, 'patient', ['patient'])}"}
        made = requests.post(f"{edge}/api/registration/me/patients", headers=headers, json={
            "relationship": "self", "name": "患者", "sex": "female", "birthDate": "1990-01-01", "province": "河北"})
        made.raise_for_status()
        return headers, made.json()["id"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        patients = list(pool.map(profile, accounts))
    print(f"setup: {len(doctors)} doctors, {len(sessions)} sessions of 200 places, {len(patients)} patients")

    # Confirmed bookings: every client books a place in a session none of its other patients has used.
    results = []
    next_booking = iter(range(len(patients) * len(sessions)))
    lock = threading.Lock()
    for round_number in range(args.rounds):
        latencies: list[float] = []
        book_latencies: list[float] = []
        errors = 0
        stop_at = time.monotonic() + args.seconds

        def client(index: int) -> None:
            nonlocal errors
            http = requests.Session()
            while time.monotonic() < stop_at:
                with lock:
                    booking = next(next_booking, None)
                if booking is None:
                    return
                headers, patient = patients[booking // len(sessions)]
                session = sessions[booking % len(sessions)]
                started = time.monotonic()
                booked = http.post(f"{edge}/api/registration/appointments", headers=headers,
                                   json={"sessionId": session, "patientId": patient})
                if booked.status_code != 201 or not booked.json().get("payment"):
                    errors += 1
                    continue
                book_latencies.append(time.monotonic() - started)
                appointment = booked.json()["appointment"]["id"]
                http.post(edge + booked.json()["payment"]["payUrl"], data="action=pay",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
                while time.monotonic() < stop_at + 10:
                    status = http.get(f"{edge}/api/registration/appointments/{appointment}", headers=headers).json()
                    if status["status"] == "confirmed":
                        latencies.append(time.monotonic() - started)
                        break
                    time.sleep(0.002)

        began = time.monotonic()
        threads = [threading.Thread(target=client, args=(index,)) for index in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began
        if not latencies:
            sys.exit("no booking was confirmed")
        results.append({
            "confirmed_per_s": len(latencies) / elapsed, "p50": percentile(latencies, 0.5) * 1000,
            "p99": percentile(latencies, 0.99) * 1000, "book_p50": percentile(book_latencies, 0.5) * 1000,
            "book_p99": percentile(book_latencies, 0.99) * 1000, "errors": errors, "count": len(latencies)})
        print(f"round {round_number + 1}: {len(latencies)} confirmed in {elapsed:.1f} s = "
              f"{results[-1]['confirmed_per_s']:.0f}/s; book→confirmed p50 {results[-1]['p50']:.1f} ms "
              f"p99 {results[-1]['p99']:.1f} ms; booking request p50 {results[-1]['book_p50']:.1f} ms "
              f"p99 {results[-1]['book_p99']:.1f} ms; errors {errors}")

    # The race: 200 clients at once for the last 5 places of a fresh session.
    race = []
    race_accounts = [f"acct_race{index:05d}" for index in range(200)]
    with sqlite3.connect(database, timeout=30) as connection:
        connection.executemany("INSERT INTO account (id, phone, created_at) VALUES (?, ?, ?)", [
            (account, f"135{index:08d}", "2026-01-01 00:00:00.000") for index, account in enumerate(race_accounts)])
    with ThreadPoolExecutor(max_workers=16) as pool:
        racers = list(pool.map(profile, race_accounts))
    for round_number in range(args.rounds):
        # Online sessions, so they do not collide with the outpatient ones above.
        day = (today + datetime.timedelta(days=1 + round_number)).isoformat()
        made = requests.post(f"{edge}/api/registration/sessions", headers=scheduler, json={
            "doctorId": doctors[0], "date": day, "period": "morning", "visitType": "online", "feeFen": 3000,
            "places": 5})
        made.raise_for_status()
        session = made.json()["id"]
        barrier = threading.Barrier(200)

        def racer(entry: tuple[dict, str]) -> int:
            headers, patient = entry
            barrier.wait()
            return requests.post(f"{edge}/api/registration/appointments", headers=headers,
                                 json={"sessionId": session, "patientId": patient}).status_code

        began = time.monotonic()
        with ThreadPoolExecutor(max_workers=200) as pool:
            statuses = list(pool.map(racer, racers))
        elapsed = time.monotonic() - began
        assert statuses.count(201) == 5 and statuses.count(409) == 195, statuses
        race.append(elapsed)
        print(f"race {round_number + 1}: 200 requests, 5 booked, 195 no-places-left in {elapsed * 1000:.0f} ms "
              f"({200 / elapsed:.0f} requests/s)")

    holds = wrk_booking(args, edge, patients, sessions, database, work=database.parent.parent.parent)
    race_wrk = wrk_race(args, edge, racers, scheduler, doctors[1], today, work=database.parent.parent.parent)

    median = {key: statistics.median(r[key] for r in results) for key in results[0]}
    print()
    print(f"confirmed bookings through the edge ({args.clients} clients, sandbox payment): "
          f"{median['confirmed_per_s']:.0f}/s (median of {args.rounds}); book→confirmed p50 {median['p50']:.1f} ms, "
          f"p99 {median['p99']:.1f} ms; booking request alone p50 {median['book_p50']:.1f} ms, "
          f"p99 {median['book_p99']:.1f} ms")
    print(f"race, 200 clients for 5 places: median {statistics.median(race) * 1000:.0f} ms for all 200 answers "
          f"({200 / statistics.median(race):.0f} requests/s; Python clients)")
    if holds:
        print(f"booking requests (place held, order opened at the provider) with wrk, 16 connections: "
              f"{holds['rps']:.0f}/s, p50 {holds['p50']:.1f} ms, p99 {holds['p99']:.1f} ms (median of {args.rounds})")
    if race_wrk:
        print(f"race with wrk, 200 connections on one session of 5 places: {race_wrk['rps']:.0f} answers/s, "
              f"p50 {race_wrk['p50']:.1f} ms, p99 {race_wrk['p99']:.1f} ms; exactly 5 booked "
              f"(median of {args.rounds})")


WRK_SCRIPT = r"""
-- Each request a different (token, patient, session) line of the file in BOOKINGS, in turn.
local lines = {}
for line in io.lines(os.getenv("BOOKINGS")) do lines[#lines + 1] = line end
local counter = 0
local statuses = {}
function setup(thread) thread:set("offset", math.floor(#lines / 2) * counter); counter = counter + 1 end
function init(args) position = offset or 0 end
function request()
    position = position + 1
    local token, patient, session = lines[(position % #lines) + 1]:match("([^\t]+)\t([^\t]+)\t([^\t]+)")
    return wrk.format("POST", "/api/registration/appointments",
        {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"},
        '{"sessionId":"' .. session .. '","patientId":"' .. patient .. '"}')
end
"""


def wrk_run(edge: str, lines: list[str], connections: int, seconds: float, work: Path) -> dict | None:
    """Runs wrk on `POST /appointments` with one line of `lines` per request; requests/s and latency in ms."""
    import re
    import shutil

    if shutil.which("wrk") is None:
        print("wrk not found: the wrk figures are skipped (apt-get install wrk)")
        return None
    bookings = work / f"bookings-{uuid.uuid4().hex}.tsv"
    bookings.write_text("\n".join(lines) + "\n")
    script = work / "book.lua"
    script.write_text(WRK_SCRIPT)
    output = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--latency", "-s", str(script), edge],
        env={**os.environ, "BOOKINGS": str(bookings)}, capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([0-9.]+)(us|ms|s)", output, re.MULTILINE).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", output).group(1))
    return {"rps": rps, "p50": ms("50"), "p99": ms("99")}


def wrk_booking(args, edge, patients, sessions, database: Path, work: Path) -> dict | None:
    """Booking requests alone: each a new patient-session pair with places left, so every one holds a place."""
    with sqlite3.connect(database, timeout=30) as connection:
        taken = set(connection.execute("SELECT patient_id, session_id FROM appointment").fetchall())
    lines = [f"{headers['Authorization'][7:]}\t{patient}\t{session}"
             for headers, patient in patients for session in sessions if (patient, session) not in taken]
    runs = []
    for round_number in range(args.rounds):
        chunk = lines[round_number::args.rounds]
        result = wrk_run(edge, chunk, 16, min(args.seconds, 5), work)
        if result is None:
            return None
        runs.append(result)
        print(f"wrk booking round {round_number + 1}: {result['rps']:.0f}/s p50 {result['p50']:.1f} ms "
              f"p99 {result['p99']:.1f} ms")
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def wrk_race(args, edge, racers, scheduler, doctor, today, work: Path) -> dict | None:
    """200 connections on one session of 5 places: how fast the database settles the contention."""
    runs = []
    for round_number in range(args.rounds):
        day = (today + datetime.timedelta(days=1 + round_number)).isoformat()
        made = requests.post(f"{edge}/api/registration/sessions", headers=scheduler, json={
            "doctorId": doctor, "date": day, "period": "evening", "visitType": "online", "feeFen": 3000, "places": 5})
        made.raise_for_status()
        session = made.json()["id"]
        lines = [f"{headers['Authorization'][7:]}\t{patient}\t{session}" for headers, patient in racers]
        result = wrk_run(edge, lines, 200, 3, work)
        if result is None:
            return None
        booked = requests.get(f"{edge}/api/registration/sessions/{session}").json()
        assert booked["placesLeft"] == 0, booked
        runs.append(result)
        print(f"wrk race round {round_number + 1}: {result['rps']:.0f} answers/s p50 {result['p50']:.1f} ms "
              f"p99 {result['p99']:.1f} ms")
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


if __name__ == "__main__":
    main()
