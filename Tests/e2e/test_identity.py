"""Patients sign up and in through the edge, as the phone app does: an SMS code from the sandbox gateway, a
session of an access token and a rotating refresh token; tokens refused at the service, straight or through
the edge."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

from conftest import REPO, TEST_ADMIN_PASSWORD, assert_problem, http, mint_token


def sandbox_code(platform, phone: str) -> str:
    """The last code the sandbox gateway texted to `phone` (registration's loopback-only route)."""
    response = http("GET", platform.services["registration"].url + f"/internal/sandbox-sms?phone={phone}")
    assert response.status_code == 200, response.text
    messages = response.json()["messages"]
    assert messages, f"no message to {phone}"
    return messages[-1]["message"]["parameters"]["code"]


def sign_in(platform, phone: str) -> dict:
    sent = platform.request("POST", "/api/registration/auth/sms-codes", json={"phone": phone})
    assert sent.status_code == 202, sent.text
    response = platform.request(
        "POST", "/api/registration/auth/sign-in", json={"phone": phone, "code": sandbox_code(platform, phone)}
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_a_patient_signs_up_refreshes_and_signs_out_through_the_edge(platform):
    session = sign_in(platform, "13912345678")
    assert session["created"] is True
    me = platform.get("/api/registration/me", headers={"Authorization": f"Bearer {session['accessToken']}"})
    assert me.status_code == 200, me.text
    assert me.json() == {"id": session["accountId"], "phone": "139****5678", "createdAt": me.json()["createdAt"]}

    refreshed = platform.request(
        "POST", "/api/registration/auth/refresh", json={"refreshToken": session["refreshToken"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    again = platform.get(
        "/api/registration/me", headers={"Authorization": f"Bearer {refreshed.json()['accessToken']}"}
    )
    assert again.status_code == 200

    # The first refresh token again: the session ends, and the newer token with it.
    reused = platform.request(
        "POST", "/api/registration/auth/refresh", json={"refreshToken": session["refreshToken"]}
    )
    assert assert_problem(reused, 401)["code"] == "refresh-token-reused"
    newer = platform.request(
        "POST", "/api/registration/auth/refresh", json={"refreshToken": refreshed.json()["refreshToken"]}
    )
    assert assert_problem(newer, 401)["code"] == "refresh-token-invalid"


def test_a_wrong_code_is_counted_and_the_code_is_never_in_the_log(platform):
    phone = "13712345678"
    sent = platform.request("POST", "/api/registration/auth/sms-codes", json={"phone": phone})
    assert sent.status_code == 202
    code = sandbox_code(platform, phone)
    wrong = "000000" if code != "000000" else "111111"
    response = platform.request("POST", "/api/registration/auth/sign-in", json={"phone": phone, "code": wrong})
    assert assert_problem(response, 401)["code"] == "code-invalid"
    log = platform.services["registration"].stdout_text() + platform.services["registration"].stderr_text()
    assert code not in log
    assert phone not in log, "the full number is logged; only the masked one may be"


def test_a_forged_or_edited_token_is_refused_by_the_service_directly_and_through_the_edge(platform):
    session = sign_in(platform, "13612345678")
    header, payload, signature = session["accessToken"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "acct_someone_else"
    edited_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    edited = f"{header}.{edited_payload}.{signature}"
    for url in (platform.url + "/api/registration/me", platform.services["registration"].url + "/me"):
        response = http("GET", url, headers={"Authorization": f"Bearer {edited}"})
        assert assert_problem(response, 401)["code"] == "invalid-token", url
        missing = http("GET", url)
        assert assert_problem(missing, 401)["code"] == "authentication-required", url


def test_the_sandbox_route_is_not_reachable_through_the_edge(platform):
    response = platform.get("/api/registration/internal/sandbox-sms?phone=13912345678")
    assert response.status_code == 404


def test_the_edge_limits_sign_in_requests_per_address_before_the_service_hears_of_them(launcher, fake_upstreams):
    upstream = fake_upstreams.recording(body=b'{"phone":"138****5678"}')
    edge = launcher.edge({"registration": upstream.url}, env={"YUNZHEN_EDGE_SIGN_IN_PER_MINUTE": "3"})
    statuses = [
        http("POST", edge.url + "/api/registration/auth/sms-codes", json={"phone": "13812345678"}).status_code
        for _ in range(4)
    ]
    assert statuses[:3] == [200, 200, 200], statuses
    assert statuses[3] == 429
    assert len(upstream.requests) == 3, "the limited request reached the service"
    # Other routes are not limited.
    assert http("GET", edge.url + "/api/registration/departments").status_code == 200


def test_the_edge_refuses_expired_and_missing_tokens_before_proxying(launcher, fake_upstreams):
    upstream = fake_upstreams.recording()
    edge = launcher.edge({"reports": upstream.url})
    expired = mint_token(issued_at=0)
    assert assert_problem(http("GET", edge.url + "/api/reports/r1"), 401)["code"] == "authentication-required"
    response = http("GET", edge.url + "/api/reports/r1", headers={"Authorization": f"Bearer {expired}"})
    assert assert_problem(response, 401)["code"] == "token-expired"
    assert upstream.requests == [], "a refused request reached the service"
    ok = http("GET", edge.url + "/api/reports/r1", headers={"Authorization": f"Bearer {mint_token()}"})
    assert ok.status_code == 200 and len(upstream.requests) == 1


def test_the_first_admin_creates_a_doctor_who_signs_in_through_the_edge(platform):
    def staff_sign_in(username: str, password: str) -> dict:
        response = platform.request(
            "POST", "/api/registration/auth/staff/sign-in", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return response.json()

    first = staff_sign_in("admin", TEST_ADMIN_PASSWORD)
    assert first["mustChangePassword"] is True
    first_auth = {"Authorization": f"Bearer {first['session']['accessToken']}"}
    # The temporary password's session may only replace it.
    assert assert_problem(platform.get("/api/registration/admin/staff", headers=first_auth), 403)["code"] == "role-required"
    changed = platform.request(
        "POST", "/api/registration/auth/staff/password", headers=first_auth,
        json={"currentPassword": TEST_ADMIN_PASSWORD, "newPassword": "E2e-Own-Pass-22"},
    )
    assert changed.status_code == 204, changed.text
    admin = staff_sign_in("admin", "E2e-Own-Pass-22")
    assert admin["mustChangePassword"] is False
    auth = {"Authorization": f"Bearer {admin['session']['accessToken']}"}
    created = platform.request(
        "POST", "/api/registration/admin/staff", headers=auth,
        json={"username": "chen.jing", "displayName": "陈静", "roles": ["doctor"], "temporaryPassword": "Doctor-Temp-26"},
    )
    assert created.status_code == 201, created.text
    doctor = staff_sign_in("chen.jing", "Doctor-Temp-26")
    doctor_auth = {"Authorization": f"Bearer {doctor['session']['accessToken']}"}
    assert assert_problem(platform.get("/api/registration/admin/staff", headers=doctor_auth), 403)["code"] == "role-required"
    # A doctor is not a patient: the patient routes refuse them.
    assert assert_problem(platform.get("/api/registration/me/patients", headers=doctor_auth), 403)["code"] == "role-required"
    listed = platform.get("/api/registration/admin/staff", headers=auth)
    assert [s["username"] for s in listed.json()["staff"]] == ["admin", "chen.jing"]
    # The password is never in the service's log.
    log = platform.services["registration"].stdout_text() + platform.services["registration"].stderr_text()
    assert "Doctor-Temp-26" not in log and TEST_ADMIN_PASSWORD not in log and "E2e-Own-Pass-22" not in log


def test_every_service_keeps_a_verifiable_audit_trail_for_admins_only(platform):
    admin = {"Authorization": f"Bearer {mint_token(subject='staff_admin', kind='staff', roles=('admin',))}"}
    doctor = {"Authorization": f"Bearer {mint_token(subject='staff_doc', kind='staff', roles=('doctor',))}"}
    for service in ("registration", "reports", "consult", "followup", "screening"):
        verified = platform.get(f"/api/{service}/admin/audit/verify", headers=admin)
        assert verified.status_code == 200, (service, verified.text)
        assert verified.json()["intact"] is True, (service, verified.json())
        page = platform.get(f"/api/{service}/admin/audit?limit=5", headers=admin)
        assert page.status_code == 200, (service, page.text)
        refused = platform.get(f"/api/{service}/admin/audit", headers=doctor)
        assert assert_problem(refused, 403)["code"] == "role-required", service
        # Straight to the service, a forged token is refused there too.
        forged = http(
            "GET", platform.services[service].url + "/admin/audit",
            headers={"Authorization": admin["Authorization"][:-4] + "AAAA"},
        )
        assert assert_problem(forged, 401)["code"] == "invalid-token", service


def test_an_integrator_trades_its_key_for_a_scoped_token_through_the_edge(platform):
    admin = {"Authorization": f"Bearer {mint_token(subject='staff_admin', kind='staff', roles=('admin',))}"}
    made = platform.request(
        "POST", "/api/registration/admin/integrators", headers=admin,
        json={"name": "Clinical data center", "eventTypes": ["registration.patient-registered.v1"]},
    )
    assert made.status_code == 201, made.text
    key = made.json()["apiKey"]
    traded = platform.request("POST", "/api/registration/auth/integrator/token", headers={"Authorization": f"ApiKey {key}"})
    assert traded.status_code == 200, traded.text
    assert traded.json()["eventTypes"] == ["registration.patient-registered.v1"]
    token = {"Authorization": f"Bearer {traded.json()['accessToken']}"}
    # An integrator is no admin and no patient.
    assert assert_problem(platform.get("/api/reports/admin/audit", headers=token), 403)["code"] == "role-required"
    assert assert_problem(platform.get("/api/registration/me/patients", headers=token), 403)["code"] == "role-required"
    log = platform.services["registration"].stdout_text() + platform.services["registration"].stderr_text()
    assert key.split("_")[2] not in log, "the key's secret reached the log"


def staff_session(platform, username: str, password: str, new_password: str | None = None) -> dict:
    """Signs a staff member in through the edge (replacing a temporary password with `new_password` first)."""
    def sign_in(secret: str) -> dict:
        response = platform.request(
            "POST", "/api/registration/auth/staff/sign-in", json={"username": username, "password": secret}
        )
        assert response.status_code == 200, response.text
        return response.json()

    session = sign_in(password)
    if new_password:
        changed = platform.request(
            "POST", "/api/registration/auth/staff/password",
            headers={"Authorization": f"Bearer {session['session']['accessToken']}"},
            json={"currentPassword": password, "newPassword": new_password},
        )
        assert changed.status_code == 204, changed.text
        session = sign_in(new_password)
    return session


def token_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_a_doctor_in_a_team_sees_a_patient_only_by_break_glass_and_the_reason_is_audited(platform):
    admin = platform.auth()
    saved = platform.put(
        "/api/registration/departments/hematology", headers=admin,
        json={"name": "血液科", "nameEn": "Hematology", "description": ""},
    )
    assert saved.status_code in (200, 201), saved.text
    team = platform.request(
        "POST", "/api/registration/admin/teams", headers=admin, json={"departmentId": "hematology", "name": "王建主任治疗组"}
    )
    assert team.status_code == 201, team.text
    created = platform.request(
        "POST", "/api/registration/admin/staff", headers=admin,
        json={
            "username": "wang.jian", "displayName": "王建", "roles": ["doctor"], "departmentIds": ["hematology"],
            "temporaryPassword": "Doctor-Temp-26",
        },
    )
    assert created.status_code == 201, created.text
    member = platform.put(
        f"/api/registration/admin/teams/{team.json()['id']}/members/{created.json()['id']}", headers=admin
    )
    assert member.status_code == 200, member.text
    doctor = staff_session(platform, "wang.jian", "Doctor-Temp-26", "Wang-Jian-Own-9")
    claims = token_claims(doctor["session"]["accessToken"])
    assert claims["departments"] == ["hematology"] and claims["teams"] == [team.json()["id"]]

    patient = sign_in(platform, "13612345678")
    profile = platform.request(
        "POST", "/api/registration/me/patients",
        headers={"Authorization": f"Bearer {patient['accessToken']}"},
        json={"relationship": "self", "name": "王芳", "residentId": "11010519491231002X"},
    )
    assert profile.status_code == 201, profile.text
    patient_id = profile.json()["id"]

    doctor_auth = {"Authorization": f"Bearer {doctor['session']['accessToken']}"}
    refused = platform.get(f"/api/registration/patients/{patient_id}", headers=doctor_auth)
    assert assert_problem(refused, 404)["code"] == "not-found"
    reason = "夜间急诊：患者昏迷，需核实身份"
    glass = platform.get(
        f"/api/registration/patients/{patient_id}",
        headers={**doctor_auth, "Yunzhen-Break-Glass-Reason": quote(reason)},
    )
    assert glass.status_code == 200, glass.text
    assert glass.json()["residentId"] == "11010519491231002X"

    trail = platform.get(f"/api/registration/admin/audit?patient={patient_id}", headers=admin)
    assert trail.status_code == 200, trail.text
    mine = [row for row in trail.json()["rows"] if row["actor"] == created.json()["id"]]
    assert [(row["outcome"], row.get("breakGlassReason")) for row in mine] == [("denied", None), ("success", reason)]
    assert mine[-1]["clientAddress"] == "127.0.0.1"


def test_the_seed_tool_creates_demo_staff_and_teams_once(platform, launcher, tmp_path):
    first = platform.seed(timeout=60)
    staff = json.loads((REPO / "seeds" / "staff.json").read_text())["staff"]
    doctors = json.loads((REPO / "seeds" / "doctors.json").read_text())["doctors"]
    assert f"staff {len(staff) + len(doctors)} created" in first, first
    assert f"doctors {len(doctors)} created" in first, first
    patients = json.loads((REPO / "seeds" / "patients.json").read_text())["accounts"]
    assert f"patients {sum(len(a['profiles']) for a in patients)} added" in first, first
    # The temporary passwords are printed once; each works, and must be changed.
    passwords = dict(line.split("\t") for line in first.splitlines() if "\t" in line)
    session = staff_session(platform, "wang.jian", passwords["wang.jian"])
    assert session["mustChangePassword"] is True
    assert "articles 12 published, 0 there already" in first, first
    again = platform.seed(timeout=60)
    assert "teams 0 created; staff 0 created" in again, again
    assert "articles 0 published, 12 there already" in again, again
    assert "doctors 0 created" in again and "sessions 0 published" in again, again

    # The catalogue is there for patients: doctors with photos and their next sessions.
    listed = platform.get("/api/registration/doctors?department=hematology").json()["doctors"]
    assert len(listed) == sum(1 for d in doctors if d["departmentId"] == "hematology")
    assert all(d["photoUrl"] for d in listed)
    photo = platform.get(listed[0]["photoUrl"])
    assert photo.status_code == 200 and photo.headers["Content-Type"] == "image/png"
    assert any(d.get("nextSession") for d in listed)

    staff = platform.get("/api/registration/admin/staff", headers=platform.auth()).json()["staff"]
    wang = next(s for s in staff if s["username"] == "wang.jian")
    assert wang["departmentIds"] == ["hematology"] and len(wang["teamIds"]) == 1
    trail = platform.get("/api/registration/admin/audit?actor=operator:seed", headers=platform.auth()).json()["rows"]
    assert any(row["resourceType"] == "staff" for row in trail)
