"""Screening killed with SIGKILL while registration's appointment events stream in: afterwards every confirmed
appointment has exactly one screening, and screening announced each exactly once."""

from __future__ import annotations

import datetime
import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

from conftest import http, mint_token, wait_until

BEIJING = datetime.timezone(datetime.timedelta(hours=8))
COUNT = 60


@pytest.mark.deadline(180)
def test_each_confirmed_appointment_opens_exactly_one_screening_across_kills(launcher, tmp_path):
    data = tmp_path / "data"
    registration = launcher.service("registration", data)
    screening = launcher.service("screening", data)
    base = registration.url
    admin = {"Authorization": f"Bearer {mint_token(subject='operator:e2e', kind='staff', roles=('admin',))}"}
    http("PUT", base + "/departments/fever-clinic", headers=admin,
         json={"name": "发热门诊", "nameEn": "Fever Clinic", "description": ""}).raise_for_status()
    # A free session: each booking is confirmed at once, so the events come as fast as bookings do.
    http("PUT", base + "/admin/doctors/shen-yi", headers=admin, json={
        "departmentId": "fever-clinic", "name": "沈怡", "title": "attending", "specialties": [], "introduction": "",
        "fees": {"online": 0}}).raise_for_status()
    tomorrow = (datetime.datetime.now(BEIJING).date() + datetime.timedelta(days=1)).isoformat()
    session = http("POST", base + "/sessions", headers=admin, json={
        "doctorId": "shen-yi", "date": tomorrow, "period": "evening", "visitType": "online", "places": COUNT}).json()
    accounts = [f"acct_kill{index:03d}" for index in range(COUNT)]
    with sqlite3.connect(data / "registration" / "registration.sqlite", timeout=30) as connection:
        connection.executemany("INSERT INTO account (id, phone, created_at) VALUES (?, ?, ?)", [
            (account, f"1330000{index:04d}", "2026-01-01 00:00:00.000") for index, account in enumerate(accounts)])
    patients = []
    for account in accounts:
        headers = {"Authorization": f"Bearer {mint_token(subject=account)}"}
        made = http("POST", base + "/me/patients", headers=headers, json={
            "relationship": "self", "name": "患者", "sex": "female", "birthDate": "1985-03-03", "province": "北京"})
        made.raise_for_status()
        patients.append((headers, made.json()["id"]))

    def book_all() -> None:
        for headers, patient in patients:
            booked = http("POST", base + "/appointments", headers=headers,
                          json={"sessionId": session["id"], "patientId": patient})
            assert booked.status_code == 201 and booked.json()["appointment"]["status"] == "confirmed", booked.text
            time.sleep(0.01)

    booking = threading.Thread(target=book_all)
    booking.start()
    rng = random.Random(time.time_ns())
    kills = 0
    while booking.is_alive():
        time.sleep(rng.uniform(0.05, 0.3))
        if screening.running():
            os.kill(screening.pid, signal.SIGKILL)
            screening.popen.wait(timeout=10)
            kills += 1
        screening.start()
    booking.join()
    if not screening.running():
        screening.start()

    database = data / "screening" / "screening.sqlite"

    def screenings() -> int:
        with sqlite3.connect(database, timeout=30) as connection:
            return connection.execute("SELECT count(*) FROM screening").fetchone()[0]

    wait_until(lambda: screenings() == COUNT, timeout=60, message=lambda: f"{COUNT} screenings (have {screenings()})")
    with sqlite3.connect(database, timeout=30) as connection:
        appointments = [row[0] for row in connection.execute("SELECT appointment_id FROM screening")]
    assert len(set(appointments)) == COUNT

    # Every screening announced once: the relay has moved the outbox to screening's topic.
    def announced() -> list[str]:
        tail = subprocess.run(
            [str(launcher.bin_dir / "yunzhen"), "queue", "tail", "screening", "--from", "0", "--data", str(data)],
            capture_output=True, text=True, timeout=30)
        return [json.loads(line)["event"]["subject"] for line in tail.stdout.splitlines() if line.strip()]

    subjects = wait_until(lambda: (lambda s: s if len(s) >= COUNT else None)(announced()), timeout=30,
                          message="screening's events on its topic")
    assert len(subjects) == COUNT and len(set(subjects)) == COUNT, subjects
    assert kills >= 3, f"screening was killed only {kills} times"
