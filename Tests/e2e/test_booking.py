"""Booking and paying through the edge, as the phone app does, with the sandbox payment provider: the cashier page,
the provider's signed notification over libcurl, the confirmed appointment; and the race of many clients for the
last places of a session."""

from __future__ import annotations

import datetime
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import assert_problem, http, mint_token, signed_in, wait_until
from test_identity import sign_in

BEIJING = datetime.timezone(datetime.timedelta(hours=8))
PERIODS = {"morning": (8, 0, 12, 0), "afternoon": (13, 30, 17, 30), "evening": (18, 0, 21, 0)}


def scheduler() -> dict[str, str]:
    return signed_in(
        {"Content-Type": "application/json"},
        subject="staff_sched", kind="staff", roles=("scheduler",), departments=("hematology",),
    )


def setup_doctor(platform, doctor: str = "wang-jian") -> None:
    admin = {**platform.auth(), "Content-Type": "application/json"}
    saved = platform.put(
        "/api/registration/departments/hematology", headers=admin,
        json={"name": "血液科", "nameEn": "Hematology", "description": ""},
    )
    assert saved.status_code in (200, 201), saved.text
    made = platform.put(
        f"/api/registration/admin/doctors/{doctor}", headers=admin,
        json={
            "departmentId": "hematology", "name": "王建", "title": "chief", "specialties": ["白血病"],
            "introduction": "擅长急性白血病。", "fees": {"outpatient": 5000, "online": 3000},
        },
    )
    assert made.status_code in (200, 201), made.text


def publish(platform, doctor: str, date: str, period: str, places: int) -> dict:
    response = platform.request(
        "POST", "/api/registration/sessions", headers=scheduler(),
        json={"doctorId": doctor, "date": date, "period": period, "visitType": "outpatient", "places": places},
    )
    assert response.status_code == 201, response.text
    return response.json()


def signed_up_patient(platform, phone: str, name: str) -> tuple[dict[str, str], str]:
    """A patient who signs up by SMS through the edge and adds their own profile: their headers and patient id."""
    account = sign_in(platform, phone)
    headers = {"Authorization": f"Bearer {account['accessToken']}"}
    made = platform.request(
        "POST", "/api/registration/me/patients", headers=headers,
        json={"relationship": "self", "name": name, "residentId": "11010519491231002X"},
    )
    assert made.status_code == 201, made.text
    return headers, made.json()["id"]


def book_and_pay(platform, headers: dict[str, str], session: str, patient: str) -> dict:
    """Books `session` for `patient` and pays at the sandbox cashier, as the patient's browser would: the booking.
    The appointment is confirmed once the provider's notification arrives."""
    booked = platform.request(
        "POST", "/api/registration/appointments", headers=headers, json={"sessionId": session, "patientId": patient}
    )
    assert booked.status_code == 201, booked.text
    paid = http("POST", platform.url + booked.json()["payment"]["payUrl"], data="action=pay",
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert "支付成功" in paid.text, paid.text
    return booked.json()


def today_session_or_tomorrow() -> tuple[str, str, bool]:
    """A session still to come today in Beijing (date, period, True), or tomorrow morning's (…, False)."""
    now = datetime.datetime.now(BEIJING)
    for period, (_, _, end_hour, end_minute) in PERIODS.items():
        if (now.hour, now.minute) < (end_hour, end_minute - 5 if end_minute >= 5 else end_minute):
            return now.date().isoformat(), period, True
    return (now.date() + datetime.timedelta(days=1)).isoformat(), "morning", False


def test_a_patient_books_pays_at_the_cashier_is_confirmed_by_the_notification_and_checks_in(platform):
    setup_doctor(platform)
    date, period, today = today_session_or_tomorrow()
    session = publish(platform, "wang-jian", date, period, places=5)

    # The public catalogue shows the doctor and the session, without a token.
    doctor = platform.get("/api/registration/doctors/wang-jian")
    assert doctor.status_code == 200, doctor.text
    assert doctor.json()["nextSession"]["id"] == session["id"]
    assert platform.get(f"/api/registration/sessions/{session['id']}").json()["placesLeft"] == 5

    headers, patient = signed_up_patient(platform, "13512345678", "王芳")
    booked = platform.request(
        "POST", "/api/registration/appointments", headers=headers, json={"sessionId": session["id"], "patientId": patient}
    )
    assert booked.status_code == 201, booked.text
    appointment = booked.json()["appointment"]
    payment = booked.json()["payment"]
    assert appointment["status"] == "pending-payment" and appointment["visitNumber"] == 1
    assert payment["amountFen"] == 5000 and payment["payUrl"].startswith("/api/registration/sandbox-pay/pay/")

    # The cashier page, then paying on it: the provider notifies registration over HTTP, signed.
    cashier = platform.get(payment["payUrl"])
    assert cashier.status_code == 200 and "50.00" in cashier.text
    paid = http(
        "POST", platform.url + payment["payUrl"], data="action=pay",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert paid.status_code == 200 and "支付成功" in paid.text, paid.text

    def status() -> str:
        return platform.get(f"/api/registration/appointments/{appointment['id']}", headers=headers).json()["status"]

    wait_until(lambda: status() == "confirmed", timeout=15, message="the payment notification to confirm the booking")
    mine = platform.get("/api/registration/me/appointments", headers=headers).json()["appointments"]
    assert [(a["id"], a["status"], a["payment"]["status"]) for a in mine] == [(appointment["id"], "confirmed", "paid")]

    check_in = platform.request("POST", f"/api/registration/appointments/{appointment['id']}/check-in", headers=headers)
    if today:
        assert check_in.status_code == 200, check_in.text
        assert check_in.json()["status"] == "checked-in"
    else:
        # After 21:00 in Beijing no session is left today: the rule itself is what can be checked.
        assert assert_problem(check_in, 409)["code"] == "not-the-day"

    # A forged notification is refused, through the edge as directly.
    forged = platform.request(
        "POST", "/api/registration/payments/notify", data=b'{"event":"payment.succeeded"}',
        headers={"Content-Type": "application/json", "X-Yunzhen-Key-Id": "sandbox", "X-Yunzhen-Timestamp": "1",
                 "X-Yunzhen-Signature": "00"},
    )
    assert assert_problem(forged, 401)["code"] == "notification-refused"


def test_cancelling_a_paid_booking_is_refunded_through_the_provider(platform):
    setup_doctor(platform)
    tomorrow = (datetime.datetime.now(BEIJING).date() + datetime.timedelta(days=1)).isoformat()
    session = publish(platform, "wang-jian", tomorrow, "afternoon", places=2)
    headers, patient = signed_up_patient(platform, "13512345679", "李雷")
    booked = book_and_pay(platform, headers, session["id"], patient)
    appointment = booked["appointment"]["id"]

    def payment_status() -> str:
        return platform.get(f"/api/registration/appointments/{appointment}", headers=headers).json()["payment"]["status"]

    wait_until(lambda: payment_status() == "paid", timeout=15, message="the payment to be notified")
    cancelled = platform.request(
        "POST", f"/api/registration/appointments/{appointment}/cancel", headers=headers, json={"note": "改期"}
    )
    assert cancelled.status_code == 200, cancelled.text
    # The booking worker asks the provider for the refund; the provider's refund notification closes it.
    wait_until(lambda: payment_status() == "refunded", timeout=20, message="the refund to be notified")


def test_two_hundred_clients_race_through_the_edge_for_the_last_five_places(platform):
    setup_doctor(platform)
    tomorrow = (datetime.datetime.now(BEIJING).date() + datetime.timedelta(days=1)).isoformat()
    session = publish(platform, "wang-jian", tomorrow, "evening", places=5)
    # 200 patient accounts, written straight into registration's database as its sign-up would (signing 200
    # numbers in by SMS would only test the sign-in limits); each adds its own profile through the edge.
    database = platform.data_dir / "registration" / "registration.sqlite"
    accounts = [f"acct_race{index:03d}" for index in range(200)]
    with sqlite3.connect(database, timeout=30) as connection:
        connection.executemany(
            "INSERT INTO account (id, phone, created_at) VALUES (?, ?, ?)",
            [(account, f"1370000{index:04d}", "2026-01-01 00:00:00.000") for index, account in enumerate(accounts)],
        )

    def profile(account: str) -> tuple[dict, str]:
        headers = {"Authorization": f"Bearer {mint_token(subject=account)}"}
        made = platform.request(
            "POST", "/api/registration/me/patients", headers=headers,
            json={"relationship": "self", "name": "患者", "sex": "male", "birthDate": "1990-01-01", "province": "河北"},
        )
        assert made.status_code == 201, made.text
        return headers, made.json()["id"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        patients = list(pool.map(profile, accounts))

    def book(entry: tuple[dict, str]) -> tuple[int, str]:
        headers, patient = entry
        response = http(
            "POST", platform.url + "/api/registration/appointments", headers=headers,
            json={"sessionId": session["id"], "patientId": patient},
        )
        code = response.json().get("code", "") if response.status_code != 201 else ""
        return response.status_code, code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=200) as pool:
        outcomes = list(pool.map(book, patients))
    elapsed = time.monotonic() - started
    assert sorted(set(outcomes)) == [(201, ""), (409, "no-places-left")], outcomes
    assert outcomes.count((201, "")) == 5, outcomes
    print(f"race: 200 clients, 5 places, {elapsed:.2f} s")
    with sqlite3.connect(database, timeout=30) as connection:
        numbers = [row[0] for row in connection.execute(
            "SELECT visit_number FROM appointment WHERE session_id = ? ORDER BY visit_number", (session["id"],))]
    assert numbers == [1, 2, 3, 4, 5]
    assert platform.get(f"/api/registration/sessions/{session['id']}").json()["placesLeft"] == 0


def test_a_payment_whose_notification_never_arrives_is_found_by_reconciliation(launcher, tmp_path):
    """The provider cannot reach registration (its notify URL points nowhere): the booking worker asks the provider
    about the late order, finds it paid, and confirms the appointment."""
    from conftest import free_port

    registration = launcher.service("registration", tmp_path / "data", env={
        "YUNZHEN_PAYMENT_NOTIFY_URL": f"http://127.0.0.1:{free_port()}/payments/notify",
        "YUNZHEN_PAYMENT_RECONCILE_AFTER_SECONDS": "1",
    })
    base = registration.url
    admin = {"Authorization": f"Bearer {mint_token(subject='operator:e2e', kind='staff', roles=('admin',))}"}
    http("PUT", base + "/departments/hematology", headers=admin,
         json={"name": "血液科", "nameEn": "Hematology", "description": ""}).raise_for_status()
    http("PUT", base + "/admin/doctors/wang-jian", headers=admin, json={
        "departmentId": "hematology", "name": "王建", "title": "chief", "specialties": [], "introduction": "",
        "fees": {"outpatient": 5000}}).raise_for_status()
    tomorrow = (datetime.datetime.now(BEIJING).date() + datetime.timedelta(days=1)).isoformat()
    session = http("POST", base + "/sessions", headers=scheduler(), json={
        "doctorId": "wang-jian", "date": tomorrow, "period": "morning", "visitType": "outpatient", "places": 3}).json()
    with sqlite3.connect(tmp_path / "data" / "registration" / "registration.sqlite", timeout=30) as connection:
        connection.execute("INSERT INTO account (id, phone, created_at) VALUES ('acct_late', '13912340000', "
                           "'2026-01-01 00:00:00.000')")
    patient_headers = {"Authorization": f"Bearer {mint_token(subject='acct_late')}"}
    patient = http("POST", base + "/me/patients", headers=patient_headers, json={
        "relationship": "self", "name": "迟到", "sex": "male", "birthDate": "1980-05-05", "province": "北京"}).json()["id"]
    booked = http("POST", base + "/appointments", headers=patient_headers,
                  json={"sessionId": session["id"], "patientId": patient}).json()
    pay_path = booked["payment"]["payUrl"].removeprefix("/api/registration")
    paid = http("POST", base + pay_path, data="action=pay", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert "支付成功" in paid.text

    def status() -> str:
        return http("GET", base + f"/appointments/{booked['appointment']['id']}", headers=patient_headers).json()["status"]

    wait_until(lambda: status() == "confirmed", timeout=20, message="reconciliation to find the order paid")
    assert "found ord_" in registration.stdout_text()


def test_a_paid_booking_opens_a_screening_the_patient_answers(platform):
    """Registration's appointment-confirmed event reaches screening through the queue; the patient answers the
    seeded questionnaire and is told where to go."""
    setup_doctor(platform)
    seeded = platform.seed()
    assert "screening questionnaire published" in seeded, seeded
    tomorrow = (datetime.datetime.now(BEIJING).date() + datetime.timedelta(days=1)).isoformat()
    session = publish(platform, "wang-jian", tomorrow, "afternoon", places=3)
    headers, patient = signed_up_patient(platform, "13512345670", "赵雷")
    booked = book_and_pay(platform, headers, session["id"], patient)

    def pending() -> list:
        return platform.get("/api/screening/me/screenings", headers=headers).json().get("screenings", [])

    screenings = wait_until(pending, timeout=20, message="the confirmed appointment to open a screening")
    assert screenings[0]["appointmentId"] == booked["appointment"]["id"] and screenings[0]["status"] == "pending"
    current = platform.get("/api/screening/questionnaires/current", headers=headers).json()
    answers = {item["id"]: False for item in current["questionnaire"]["items"] if item["type"] == "yes-no"}
    answers.update({"Q1": 36.6, "Q2": ["none"], "Q8": "green", "Q12": "yes", "Q14": True})
    answered = platform.request(
        "POST", f"/api/screening/screenings/{screenings[0]['id']}/answers", headers=headers,
        json={"version": current["version"], "answers": answers},
    )
    # The window opens 24 hours before the visit: tomorrow afternoon may still be more than 24 hours away.
    if answered.status_code == 409:
        assert answered.json()["code"] == "not-open-yet", answered.text
        return
    assert answered.status_code == 200, answered.text
    result = answered.json()["result"]
    assert (result["ruleId"], result["outcome"], result["passes"]) == ("R7", "normal-visit", True)
    assert answered.json()["status"] == "passed"
