"""Screening through the edge, as the phone app and the gate's scanner use it: the entry pass of a passed
screening (its QR code read back by zbarimg, an independent decoder) checked at the door, the 科普 articles anyone
may read, and a free epidemic question."""

from __future__ import annotations

import base64
import subprocess
import tempfile

from conftest import mint_token, wait_until
from test_booking import book_and_pay, publish, setup_doctor, signed_up_patient, today_session_or_tomorrow


def zbar(png: bytes) -> list[str]:
    with tempfile.NamedTemporaryFile(suffix=".png") as image:
        image.write(png)
        image.flush()
        decoded = subprocess.run(["zbarimg", "--quiet", "--raw", image.name], capture_output=True, text=True)
    return decoded.stdout.splitlines()


def test_a_passed_screening_gives_a_pass_the_gate_checks(platform):
    setup_doctor(platform)
    platform.seed()
    day, period, today = today_session_or_tomorrow()
    session = publish(platform, "wang-jian", day, period, places=3)
    headers, patient = signed_up_patient(platform, "13512346601", "钱进")
    book_and_pay(platform, headers, session["id"], patient)
    screenings = wait_until(
        lambda: platform.get("/api/screening/me/screenings", headers=headers).json().get("screenings"),
        timeout=20, message="the confirmed appointment to open a screening")
    screening = screenings[0]["id"]
    current = platform.get("/api/screening/questionnaires/current", headers=headers).json()
    answers = {item["id"]: False for item in current["questionnaire"]["items"] if item["type"] == "yes-no"}
    answers.update({"Q1": 36.4, "Q2": ["none"], "Q8": "green", "Q12": "yes", "Q14": True})
    # Today's session or tomorrow morning's: within the 24 hours before the visit, so the window is open.
    answered = platform.request("POST", f"/api/screening/screenings/{screening}/answers", headers=headers,
                                json={"version": current["version"], "answers": answers})
    assert answered.status_code == 200 and answered.json()["status"] == "passed", answered.text

    passed = platform.get(f"/api/screening/screenings/{screening}/pass", headers=headers)
    assert passed.status_code == 200, passed.text
    entry_pass = passed.json()
    png = base64.b64decode(entry_pass["qrCode"].split(",", 1)[1])
    assert zbar(png) == [entry_pass["token"]]
    assert len(entry_pass["code"]) == 9 and entry_pass["visitDate"] == day

    gate = {"Authorization": f"Bearer {mint_token(subject='staff_gate', kind='staff', roles=('gate',))}"}
    assert platform.request("POST", "/api/screening/gate/checks", headers=headers,
                            json={"pass": entry_pass["token"]}).status_code == 403
    checked = platform.request("POST", "/api/screening/gate/checks", headers=gate,
                               json={"pass": entry_pass["token"], "patientId": patient, "gate": "门诊楼东门"})
    if not today:
        # After the day's last session the visit is tomorrow: its pass is not valid before tomorrow.
        assert checked.status_code == 409 and checked.json()["code"] == "pass-not-yet-valid", checked.text
        return
    assert checked.status_code == 201 and checked.json()["patientId"] == patient, checked.text
    again = platform.request("POST", "/api/screening/gate/checks", headers=gate, json={"code": entry_pass["code"]})
    assert again.status_code == 409 and again.json()["code"] == "pass-already-used", again.text


def test_anyone_reads_the_articles_and_a_patient_asks_an_epidemic_question(platform):
    platform.seed()
    listed = platform.get("/api/screening/articles?limit=100")
    assert listed.status_code == 200 and listed.json()["total"] == 12, listed.text
    # Newest first, and the seed publishes the last topic first: the first topic of CLINICAL.md §7 leads.
    assert listed.json()["articles"][0]["title"].startswith("发热了"), listed.json()["articles"][0]
    found = platform.get("/api/screening/articles", params={"q": "粒缺"}).json()["articles"]
    assert found and all("html" not in article for article in found)
    article = platform.get(f"/api/screening/articles/{found[0]['id']}").json()
    assert "<h2>" in article["html"] and "<script" not in article["html"]
    written = platform.request("POST", "/api/screening/articles", json={"title": "题", "body": "正文"})
    assert written.status_code == 401

    headers, patient = signed_up_patient(platform, "13512346602", "孙悦")

    def ask():
        response = platform.request(
            "POST", "/api/screening/epidemic-consultations", headers=headers,
            json={"patientId": patient, "topic": "vaccination", "question": "移植后半年可以打流感疫苗吗？"})
        # Screening learns of the new patient from registration's event, a moment after registration.
        return response if response.status_code == 201 else None

    opened = wait_until(ask, timeout=20, message="screening to learn of the patient and record the question").json()
    doctor = {"Authorization": f"Bearer {mint_token(subject='staff_doc', kind='staff', roles=('doctor',))}"}
    waiting = platform.get("/api/screening/epidemic-consultations", headers=doctor).json()["consultations"]
    assert opened["id"] in [consultation["id"] for consultation in waiting]
    taken = platform.request("POST", f"/api/screening/epidemic-consultations/{opened['id']}/take", headers=doctor)
    assert taken.status_code == 200 and taken.json()["status"] == "taken", taken.text
