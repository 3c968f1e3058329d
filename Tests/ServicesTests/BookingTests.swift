import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import Testing
import YunzhenAudit
import YunzhenContracts
import YunzhenIdentity
import YunzhenServiceKit
import YunzhenStorage
import YunzhenTesting

@testable import RegistrationService

/// A clock the tests move.
final class TestClock: Sendable {
    private let instant: Mutex<Date>
    init(_ start: Date) { instant = Mutex(start) }
    var now: Date { instant.withLock { $0 } }
    func advance(minutes: Double) { instant.withLock { $0 = $0.addingTimeInterval(minutes * 60) } }
    func set(_ date: Date) { instant.withLock { $0 = date } }
}

/// Booking through registration's routes on a real (in-memory) SQLite database, with the payment gateway's
/// notifications signed as the gateway signs them. The gateway itself is unreachable here (the sandbox provider's
/// whole round trip runs in the end-to-end tests), which is also how a gateway outage looks.
struct BookingFixture {
    static let secret = "booking-test-secret-booking-test-secret"
    static let calendar = HospitalCalendar.shared
    /// Tomorrow in Beijing when the tests start: bookable under the default policy (7 days ahead from 08:00).
    static let visitDay = calendar.date(calendar.date(of: Date()), plusDays: 1)!

    let client: any TestClientProtocol
    let database: ServiceDatabase
    let clock: TestClock
    let admin: HTTPFields
    let scheduler: HTTPFields

    static func run(_ body: @escaping @Sendable (BookingFixture) async throws -> Void) async throws {
        let database = try ServiceDatabase.inMemory(migrator: RegistrationMigrations.migrator)
        let clock = TestClock(Date())
        let booking = BookingSetup.unreachableGateway(signing: secret, clock: { clock.now })
        let router = buildRouter(database: database, identity: await TestIdentity.registration(), booking: booking)
        let app = ServiceApplication.make(
            name: "registration", router: router, settings: ServerSettings(port: 0), logger: Logger(label: "t"))
        let admin: HTTPFields = [
            .authorization: "Bearer \(try await TestIdentity.token("staff_admin", roles: [.admin]))",
            .contentType: "application/json",
        ]
        let scheduler: HTTPFields = [
            .authorization:
                "Bearer \(try await TestIdentity.token("staff_sched", roles: [.scheduler], departments: ["hematology"]))",
            .contentType: "application/json",
        ]
        try await app.test(.router) { client in
            let fixture = BookingFixture(
                client: client, database: database, clock: clock, admin: admin, scheduler: scheduler)
            try await fixture.expect(
                .created, .put, "/departments/hematology", ["name": "血液科", "nameEn": "Hematology", "description": ""],
                admin)
            try await body(fixture)
        }
    }

    @discardableResult
    func send(_ method: HTTPRequest.Method, _ path: String, _ json: Any? = nil, _ headers: HTTPFields = [:])
        async throws -> TestResponse
    {
        var headers = headers
        if json != nil { headers[.contentType] = "application/json" }
        return try await client.execute(
            uri: path, method: method, headers: headers,
            body: try json.map { ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: $0)) })
    }

    /// Sends and checks the status; returns the JSON object of the answer.
    @discardableResult
    func expect(
        _ status: HTTPResponse.Status, _ method: HTTPRequest.Method, _ path: String, _ json: Any? = nil,
        _ headers: HTTPFields = [:], sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> [String: Any] {
        let response = try await send(method, path, json, headers)
        #expect(
            response.status == status, "\(method) \(path): \(String(buffer: response.body))",
            sourceLocation: sourceLocation)
        return (try? JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]) ?? [:]
    }

    /// Sends and returns the problem code.
    func problem(_ method: HTTPRequest.Method, _ path: String, _ json: Any? = nil, _ headers: HTTPFields = [:])
        async throws -> String
    {
        let response = try await send(method, path, json, headers)
        return (try? JSONDecoder().decode(ProblemDocument.self, from: Data(buffer: response.body)))?.code
            ?? "status \(response.status.code)"
    }

    /// A doctor of hematology with fees, linked to `staff` when given; `status` 200 when it exists already.
    func doctor(
        _ id: String, staff: String? = nil, outpatientFee: Int = 5000, status: HTTPResponse.Status = .created
    ) async throws {
        var body: [String: Any] = [
            "departmentId": "hematology", "name": "王建", "title": "chief", "specialties": ["白血病", "淋巴瘤"],
            "introduction": "擅长急性白血病的诊治。", "fees": ["outpatient": outpatientFee, "online": 3000],
        ]
        if let staff { body["staffId"] = staff }
        try await expect(status, .put, "/admin/doctors/\(id)", body, admin)
    }

    /// Publishes a session; returns its id.
    func session(
        doctor: String, date: String = visitDay, period: String = "morning", places: Int? = 5,
        slotMinutes: Int? = nil, visitType: String = "outpatient"
    ) async throws -> String {
        var body: [String: Any] = ["doctorId": doctor, "date": date, "period": period, "visitType": visitType]
        if let places { body["places"] = places }
        if let slotMinutes { body["slotMinutes"] = slotMinutes }
        return try await expect(.created, .post, "/sessions", body, scheduler)["id"] as! String
    }

    /// A patient account with its own profile; the account's headers and the patient's id.
    func patient(_ account: String, residentID: String) async throws -> (HTTPFields, String) {
        try await database.writer.write { db in
            try db.execute(
                sql: "INSERT INTO account (id, phone, created_at) VALUES (?, ?, ?)",
                arguments: [
                    account, "1390000" + String(format: "%04d", account.utf8.reduce(0) { $0 + Int($1) }), Date(),
                ])
        }
        let headers: HTTPFields = [
            .authorization: "Bearer \(try await TestIdentity.token(account, kind: .patient, roles: [.patient]))",
            .contentType: "application/json",
        ]
        let created = try await expect(
            .created, .post, "/me/patients", ["relationship": "self", "name": "王芳", "residentId": residentID], headers)
        return (headers, created["id"] as! String)
    }

    func book(_ session: String, _ patient: String, _ headers: HTTPFields) async throws -> [String: Any] {
        try await expect(.created, .post, "/appointments", ["sessionId": session, "patientId": patient], headers)
    }

    /// The gateway's notification, signed as the gateway signs it.
    func notify(_ notification: PaymentWire.Notification, secret: String = secret) async throws -> TestResponse {
        let body = Array(try PaymentWire.encoder.encode(notification))
        var headers: HTTPFields = [.contentType: "application/json"]
        for (name, value) in MessageSigning(keyID: "offline", secret: secret).headers(for: body) {
            headers[HTTPField.Name(name)!] = value
        }
        return try await client.execute(
            uri: "/payments/notify", method: .post, headers: headers, body: ByteBuffer(bytes: body))
    }

    func paid(_ order: String, amount: Int = 5000, at: Date? = nil) -> PaymentWire.Notification {
        PaymentWire.Notification(
            event: "payment.succeeded", orderId: order, transactionId: "wx" + order, refundId: nil, amountFen: amount,
            at: at ?? clock.now)
    }

    func status(_ appointment: String) async throws -> String {
        try await database.writer.read { db in
            try String.fetchOne(db, sql: "SELECT status FROM appointment WHERE id = ?", arguments: [appointment])!
        }
    }

    func orderStatus(_ order: String) async throws -> String {
        try await database.writer.read { db in
            try String.fetchOne(db, sql: "SELECT status FROM payment_order WHERE id = ?", arguments: [order])!
        }
    }

    /// The types of the events in the outbox, oldest first.
    func events() async throws -> [String] {
        try await database.writer.read { db in
            try Data.fetchAll(db, sql: "SELECT event FROM queue_outbox ORDER BY id").map {
                try EventCoding.decoder.decode(CloudEventHeader.self, from: $0).type
            }
        }
    }

    func ledger() -> PaymentLedger {
        let booking = BookingSetup.unreachableGateway(signing: Self.secret, clock: { clock.now })
        return PaymentLedger(
            database: database.writer, gateway: booking.gateway,
            appointments: Appointments(database: database.writer, policy: BookingPolicy(), gateway: "http"),
            logger: Logger(label: "t"))
    }
}

@Suite struct BookingTests {
    static let residentA = "11010519491231002X"
    static let residentB = ResidentIDTests.make("13010219800101123")

    @Test func bookPayByNotificationAndTheAppointmentIsConfirmedOnce() async throws {
        try await BookingFixture.run { f in
            try await f.doctor("wang-jian")
            let session = try await f.session(doctor: "wang-jian", places: 3)
            let (headers, patient) = try await f.patient("acct_a", residentID: Self.residentA)
            let booked = try await f.book(session, patient, headers)
            let appointment = booked["appointment"] as! [String: Any]
            let id = appointment["id"] as! String
            #expect(appointment["status"] as? String == "pending-payment")
            #expect(appointment["visitNumber"] as? Int == 1)
            #expect(appointment["feeFen"] as? Int == 5000)
            // The gateway is down: the booking stands, and the app is told to try paying again.
            #expect(booked["payment"] == nil && (booked["paymentError"] as? String)?.isEmpty == false)
            let order = (appointment["payment"] as! [String: Any])["orderId"] as! String

            // A forged notification and one for another amount change nothing.
            let forged = try await f.notify(f.paid(order), secret: "someone-else-someone-else-someone-else")
            #expect(forged.status == .unauthorized)
            let wrongAmount = try await f.notify(f.paid(order, amount: 1))
            #expect(wrongAmount.status == .unprocessableContent)
            #expect(try await f.status(id) == "pending-payment")
            #expect(try await f.orderStatus(order) == "created")

            let paid = try await f.notify(f.paid(order))
            #expect(paid.status == .ok && String(buffer: paid.body).contains("SUCCESS"))
            #expect(try await f.status(id) == "confirmed")
            let again = try await f.notify(f.paid(order))
            #expect(again.status == .ok)
            #expect(
                try await f.events() == [
                    DepartmentSaved.eventType, PatientRegistered.eventType, AppointmentBooked.eventType,
                    PaymentSucceeded.eventType, AppointmentConfirmed.eventType,
                ])
            let mine = try await f.expect(.ok, .get, "/me/appointments", nil, headers)
            #expect((mine["appointments"] as! [[String: Any]]).map { $0["status"] as? String } == ["confirmed"])
        }
    }

    @Test func anExpiredHoldFreesItsPlaceAndALatePaymentIsRefunded() async throws {
        try await BookingFixture.run { f in
            try await f.doctor("wang-jian")
            let session = try await f.session(doctor: "wang-jian", places: 1)
            let (a, patientA) = try await f.patient("acct_a", residentID: Self.residentA)
            let (b, patientB) = try await f.patient("acct_b", residentID: Self.residentB)
            let first = (try await f.book(session, patientA, a)["appointment"] as! [String: Any])
            #expect(
                try await f.problem(.post, "/appointments", ["sessionId": session, "patientId": patientB], b)
                    == "no-places-left")
            f.clock.advance(minutes: 15.5)
            let second = (try await f.book(session, patientB, b)["appointment"] as! [String: Any])
            #expect(second["visitNumber"] as? Int == 1)
            #expect(try await f.status(first["id"] as! String) == "cancelled")
            // A's payment arrives after the hold: the money goes back.
            let order = (first["payment"] as! [String: Any])["orderId"] as! String
            #expect(try await f.notify(f.paid(order)).status == .ok)
            #expect(try await f.orderStatus(order) == "refund-pending")
            #expect(try await f.status(first["id"] as! String) == "cancelled")
        }
    }

    @Test func cancellingRefundsInFullAndTheRefundNotificationClosesIt() async throws {
        try await BookingFixture.run { f in
            try await f.doctor("wang-jian")
            let session = try await f.session(doctor: "wang-jian")
            let (headers, patient) = try await f.patient("acct_a", residentID: Self.residentA)
            let appointment = try await f.book(session, patient, headers)["appointment"] as! [String: Any]
            let id = appointment["id"] as! String
            let order = (appointment["payment"] as! [String: Any])["orderId"] as! String
            _ = try await f.notify(f.paid(order))
            let cancelled = try await f.expect(.ok, .post, "/appointments/\(id)/cancel", ["note": "改期"], headers)
            #expect(cancelled["status"] as? String == "cancelled")
            #expect(try await f.orderStatus(order) == "refund-pending")
            // The gateway is unreachable: the refund request waits for the next round.
            _ = try await f.ledger().reconcile(now: f.clock.now)
            let refundID = try await f.database.writer.read { db in
                try String.fetchOne(db, sql: "SELECT refund_id FROM payment_order WHERE id = ?", arguments: [order])!
            }
            let refunded = try await f.notify(
                PaymentWire.Notification(
                    event: "refund.succeeded", orderId: order, transactionId: nil, refundId: refundID, amountFen: 5000,
                    at: f.clock.now))
            #expect(refunded.status == .ok)
            #expect(try await f.orderStatus(order) == "refunded")
            #expect(try await f.events().suffix(2) == [AppointmentCancelled.eventType, PaymentRefunded.eventType])
            // A place freed by cancellation is bookable again, and cancelling twice is refused.
            #expect(try await f.problem(.post, "/appointments/\(id)/cancel", [:], headers) == "not-cancellable")
        }
    }

    @Test func stoppingASessionCancelsAndRefundsEveryBooking() async throws {
        try await BookingFixture.run { f in
            try await f.doctor("wang-jian")
            let session = try await f.session(doctor: "wang-jian")
            let (a, patientA) = try await f.patient("acct_a", residentID: Self.residentA)
            let (b, patientB) = try await f.patient("acct_b", residentID: Self.residentB)
            let paidOne = try await f.book(session, patientA, a)["appointment"] as! [String: Any]
            let heldOne = try await f.book(session, patientB, b)["appointment"] as! [String: Any]
            _ = try await f.notify(f.paid((paidOne["payment"] as! [String: Any])["orderId"] as! String))

            let otherScheduler: HTTPFields = [
                .authorization:
                    "Bearer \(try await TestIdentity.token("staff_x", roles: [.scheduler], departments: ["fever-clinic"]))"
            ]
            #expect(
                try await f.problem(.post, "/sessions/\(session)/stop", ["reason": "专家临时出差"], otherScheduler)
                    == "not-your-department")
            let stopped = try await f.expect(.ok, .post, "/sessions/\(session)/stop", ["reason": "专家临时出差"], f.scheduler)
            #expect(stopped["cancelledAppointments"] as? Int == 2)
            #expect(try await f.status(paidOne["id"] as! String) == "cancelled")
            #expect(try await f.status(heldOne["id"] as! String) == "cancelled")
            #expect(
                try await f.orderStatus((paidOne["payment"] as! [String: Any])["orderId"] as! String)
                    == "refund-pending")
            let events = try await f.events()
            #expect(events.filter { $0 == AppointmentCancelled.eventType }.count == 2)
            #expect(events.last == SessionStopped.eventType)
            #expect(
                try await f.problem(.post, "/appointments", ["sessionId": session, "patientId": patientA], a)
                    == "session-stopped")
        }
    }

    @Test func eachRuleOfBookingHasItsOwnProblem() async throws {
        try await BookingFixture.run { f in
            try await f.doctor("wang-jian")
            let session = try await f.session(doctor: "wang-jian")
            let (a, patientA) = try await f.patient("acct_a", residentID: Self.residentA)
            let (_, patientB) = try await f.patient("acct_b", residentID: Self.residentB)
            let calendar = BookingFixture.calendar
            let farDay = calendar.date(calendar.date(of: Date()), plusDays: 20)!
            let far = try await f.session(doctor: "wang-jian", date: farDay)
            #expect(
                try await f.problem(.post, "/appointments", ["sessionId": far, "patientId": patientA], a)
                    == "booking-not-open")
            let appointment = try await f.book(session, patientA, a)["appointment"] as! [String: Any]
            #expect(
                try await f.problem(.post, "/appointments", ["sessionId": session, "patientId": patientA], a)
                    == "already-booked")
            // Another account's patient is not yours to book for: the same 404 as an unknown one.
            #expect(
                try await f.problem(.post, "/appointments", ["sessionId": session, "patientId": patientB], a)
                    == "not-found")
            #expect(
                try await f.problem(.post, "/appointments", ["sessionId": "ses_nope", "patientId": patientA], a)
                    == "not-found")
            #expect(try await f.problem(.post, "/appointments", ["sessionId": session], a) == "invalid-body")
            let id = appointment["id"] as! String
            #expect(try await f.problem(.post, "/appointments/\(id)/check-in", [:], a) == "not-checkable")
            _ = try await f.notify(f.paid((appointment["payment"] as! [String: Any])["orderId"] as! String))
            // The day before the visit is not the day.
            #expect(try await f.problem(.post, "/appointments/\(id)/check-in", [:], a) == "not-the-day")
            // On the day, within the cut-off, cancelling is closed and checking in works.
            f.clock.set(calendar.instant(BookingFixture.visitDay, minutes: 7 * 60)!)
            #expect(try await f.problem(.post, "/appointments/\(id)/cancel", [:], a) == "cancellation-closed")
            let checkedIn = try await f.expect(.ok, .post, "/appointments/\(id)/check-in", [:], a)
            #expect(checkedIn["status"] as? String == "checked-in")
            // Sessions: each field's rule.
            for (body, field) in [
                (
                    [
                        "doctorId": "wang-jian", "date": "2026-02-30", "period": "morning", "visitType": "outpatient",
                        "places": 5,
                    ], "date"
                ),
                (
                    [
                        "doctorId": "wang-jian", "date": farDay, "period": "night", "visitType": "outpatient",
                        "places": 5,
                    ], "period"
                ),
                (
                    [
                        "doctorId": "wang-jian", "date": farDay, "period": "evening", "visitType": "outpatient",
                        "places": 0,
                    ], "places"
                ),
                (
                    ["doctorId": "wang-jian", "date": farDay, "period": "evening", "visitType": "home", "places": 5],
                    "visitType"
                ),
                (
                    [
                        "doctorId": "nobody", "date": farDay, "period": "evening", "visitType": "outpatient",
                        "places": 5,
                    ], "doctorId"
                ),
                (["doctorId": "wang-jian", "date": farDay, "period": "evening", "visitType": "outpatient"], "places"),
            ] as [([String: Any], String)] {
                let response = try await f.send(.post, "/sessions", body, f.scheduler)
                let problem = try JSONDecoder().decode(ProblemDocument.self, from: Data(buffer: response.body))
                #expect(problem.code == "invalid-session" && problem.extensions["field"] == field, "\(body)")
            }
            #expect(
                try await f.problem(
                    .post, "/sessions",
                    [
                        "doctorId": "wang-jian", "date": farDay, "period": "morning", "visitType": "outpatient",
                        "places": 5,
                    ],
                    f.scheduler) == "session-exists")
        }
    }

    @Test func timedSlotsAreBookedByTimeAndTheDoctorSeesTheirPatients() async throws {
        try await BookingFixture.run { f in
            try await f.doctor("wang-jian", staff: nil)
            // Link the doctor profile to a staff account through the admin route.
            try await f.database.writer.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO staff (id, username, display_name, roles, password_hash, must_change_password,
                            created_at, created_by)
                        VALUES ('staff_wang', 'wang.jian', '王建', 'doctor', 'x', 0, ?, 'test'),
                               ('staff_chen', 'chen.xy', '陈晓雨', 'doctor', 'x', 0, ?, 'test')
                        """,
                    arguments: [Date(), Date()])
                try db.execute(
                    sql:
                        "INSERT INTO team (id, department_id, name, created_at, created_by) VALUES ('team_w', 'hematology', '王建组', ?, 't')",
                    arguments: [Date()])
                try db.execute(
                    sql:
                        "INSERT INTO team_member (team_id, staff_id, added_at) VALUES ('team_w', 'staff_wang', ?), ('team_w', 'staff_chen', ?)",
                    arguments: [Date(), Date()])
            }
            try await f.doctor("wang-jian", staff: "staff_wang", status: .ok)
            let session = try await f.session(doctor: "wang-jian", period: "afternoon", places: nil, slotMinutes: 30)
            let page = try await f.expect(.ok, .get, "/sessions/\(session)")
            let slots = page["slots"] as! [[String: Any]]
            #expect(slots.count == 8 && page["capacity"] as? Int == 8)
            let (headers, patient) = try await f.patient("acct_a", residentID: Self.residentA)
            let third = slots[2]["id"] as! String
            let booked = try await f.expect(
                .created, .post, "/appointments", ["sessionId": session, "patientId": patient, "slotId": third], headers
            )
            #expect((booked["appointment"] as! [String: Any])["visitNumber"] as? Int == 3)
            #expect(
                try await f.problem(
                    .post, "/appointments", ["sessionId": session, "patientId": patient, "slotId": third], headers)
                    == "already-booked")

            // The doctor booked, and a colleague of their team, see the patient; another doctor does not.
            let wang: HTTPFields = [
                .authorization:
                    "Bearer \(try await TestIdentity.token("staff_wang", roles: [.doctor], teams: ["team_w"]))"
            ]
            let chen: HTTPFields = [
                .authorization:
                    "Bearer \(try await TestIdentity.token("staff_chen", roles: [.doctor], teams: ["team_w"]))"
            ]
            let other: HTTPFields = [
                .authorization: "Bearer \(try await TestIdentity.token("staff_li", roles: [.doctor]))"
            ]
            try await f.expect(.ok, .get, "/patients/\(patient)", nil, wang)
            try await f.expect(.ok, .get, "/patients/\(patient)", nil, chen)
            try await f.expect(.notFound, .get, "/patients/\(patient)", nil, other)
            let appointment = (booked["appointment"] as! [String: Any])["id"] as! String
            try await f.expect(.ok, .get, "/appointments/\(appointment)", nil, wang)
            try await f.expect(.notFound, .get, "/appointments/\(appointment)", nil, other)
            let trail = try await f.database.writer.read { db in
                try AuditTrail.page(AuditQuery(patientID: patient), in: db).map { "\($0.actor) \($0.outcome)" }
            }
            #expect(trail.contains("staff_wang success") && trail.contains("staff_li denied"))

            // The public catalogue shows the doctor's next session with its places.
            let doctor = try await f.expect(.ok, .get, "/doctors/wang-jian")
            #expect((doctor["nextSession"] as? [String: Any])?["placesLeft"] as? Int == 7)
            let found = try await f.expect(.ok, .get, "/doctors?q=%E7%99%BD%E8%A1%80")
            #expect((found["doctors"] as! [[String: Any]]).count == 1)
            let none = try await f.expect(.ok, .get, "/doctors?specialty=%E8%B4%AB%E8%A1%80")
            #expect((none["doctors"] as! [[String: Any]]).isEmpty)
        }
    }

    @Test func concurrentBookingsNeverTakeMorePlacesThanTheSessionHas() async throws {
        try await withTemporaryDirectory { directory in
            let database = try ServiceDatabase.open(
                directory: directory, name: "registration", migrator: RegistrationMigrations.migrator,
                logger: Logger(label: "t"))
            let clock = TestClock(Date())
            let appointments = Appointments(database: database.writer, policy: BookingPolicy(), gateway: "http")
            let now = clock.now
            try await database.writer.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO department (id, name, name_en, created_at, updated_at) VALUES ('hematology', '血液科', 'Hematology', ?, ?);
                        INSERT INTO doctor (id, department_id, name, title, specialties, introduction, created_at, updated_at)
                            VALUES ('wang-jian', 'hematology', '王建', 'chief', '[]', '', ?, ?);
                        """,
                    arguments: [now, now, now, now])
            }
            let (start, end) = HospitalCalendar.shared.interval(BookingFixture.visitDay, .morning)!
            try await database.writer.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO session (id, doctor_id, department_id, date, period, starts_at, ends_at, visit_type,
                            fee_fen, capacity_mode, status, published_by, created_at)
                        VALUES ('ses_race', 'wang-jian', 'hematology', ?, 'morning', ?, ?, 'outpatient', 5000, 'places', 'open', 't', ?)
                        """,
                    arguments: [BookingFixture.visitDay, start, end, now])
                for place in 1...5 {
                    try db.execute(
                        sql:
                            "INSERT INTO slot (id, session_id, visit_number, starts_at, ends_at) VALUES (?, 'ses_race', ?, ?, ?)",
                        arguments: ["ses_race-\(place)", place, start, end])
                }
                for index in 0..<200 {
                    try db.execute(
                        sql: "INSERT INTO account (id, phone, created_at) VALUES (?, ?, ?)",
                        arguments: ["acct_\(index)", "1380000\(String(format: "%04d", index))", now])
                    try db.execute(
                        sql: """
                            INSERT INTO patient (id, account_id, relationship, name, sex, birth_date, province, created_at, updated_at)
                            VALUES (?, ?, 'self', '患者', 'male', '1990-01-01', '北京', ?, ?)
                            """,
                        arguments: ["pat_\(index)", "acct_\(index)", now, now])
                }
            }
            let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        do {
                            _ = try await database.writer.write { db in
                                try appointments.book(
                                    .init(sessionId: "ses_race", patientId: "pat_\(index)"), account: "acct_\(index)",
                                    now: now, in: db)
                            }
                            return "booked"
                        } catch let problem as Problem {
                            return problem.code
                        }
                    }
                }
                return try await group.reduce(into: [String: Int]()) { $0[$1, default: 0] += 1 }
            }
            #expect(outcomes == ["booked": 5, "no-places-left": 195])
            let numbers = try await database.writer.read { db in
                try Int.fetchAll(db, sql: "SELECT visit_number FROM appointment ORDER BY visit_number")
            }
            #expect(numbers == [1, 2, 3, 4, 5])
        }
    }

    @Test func fhirViewsHaveR4ShapesAndCodes() async throws {
        try await BookingFixture.run { f in
            try await f.doctor("wang-jian")
            let session = try await f.session(doctor: "wang-jian", places: 2)
            let (headers, patient) = try await f.patient("acct_a", residentID: Self.residentA)
            let appointment = try await f.book(session, patient, headers)["appointment"] as! [String: Any]
            let id = appointment["id"] as! String

            let schedule = try await f.send(.get, "/fhir/Schedule/\(session)")
            #expect(schedule.headers[.contentType]?.hasPrefix("application/fhir+json") == true)
            let scheduleJSON = try JSONSerialization.jsonObject(with: Data(buffer: schedule.body)) as! [String: Any]
            #expect(scheduleJSON["resourceType"] as? String == "Schedule" && scheduleJSON["active"] as? Bool == true)
            #expect(
                ((scheduleJSON["actor"] as! [[String: Any]])[0]["reference"] as? String) == "Practitioner/wang-jian")

            let slots = try await f.expect(.ok, .get, "/fhir/Slot?schedule=\(session)")
            #expect(slots["resourceType"] as? String == "Bundle" && slots["type"] as? String == "searchset")
            let statuses = (slots["entry"] as! [[String: Any]]).map {
                ($0["resource"] as! [String: Any])["status"] as! String
            }
            #expect(statuses == ["busy", "free"])

            let pending = try await f.expect(.ok, .get, "/fhir/Appointment/\(id)", nil, headers)
            #expect(pending["resourceType"] as? String == "Appointment" && pending["status"] as? String == "pending")
            let participants = (pending["participant"] as! [[String: Any]]).map {
                ($0["actor"] as! [String: Any])["reference"] as! String
            }
            #expect(participants == ["Patient/\(patient)", "Practitioner/wang-jian"])
            _ = try await f.expect(.ok, .post, "/appointments/\(id)/cancel", [:], headers)
            let cancelled = try await f.expect(.ok, .get, "/fhir/Appointment?patient=\(patient)", nil, headers)
            let resource = (cancelled["entry"] as! [[String: Any]])[0]["resource"] as! [String: Any]
            #expect(resource["status"] as? String == "cancelled")
            let reason = (resource["cancelationReason"] as! [String: Any])["coding"] as! [[String: Any]]
            #expect(reason[0]["code"] as? String == "pat")
            #expect(try await f.expect(.notFound, .get, "/fhir/Slot/nope")["code"] as? String == "not-found")
        }
    }

    @Test func statisticsCountBookingsCancellationsAndOutOfProvincePatientsByDay() async throws {
        try await BookingFixture.run { f in
            try await f.doctor("wang-jian")
            let session = try await f.session(doctor: "wang-jian", places: 5)
            let (a, beijing) = try await f.patient("acct_a", residentID: Self.residentA)
            let (b, hebei) = try await f.patient("acct_b", residentID: Self.residentB)
            for (headers, patient) in [(a, beijing), (b, hebei)] {
                let booked = try await f.book(session, patient, headers)["appointment"] as! [String: Any]
                _ = try await f.notify(f.paid((booked["payment"] as! [String: Any])["orderId"] as! String))
            }
            let (c, other) = try await f.patient("acct_c", residentID: ResidentIDTests.make("31010419800101123"))
            let held = try await f.book(session, other, c)["appointment"] as! [String: Any]
            _ = try await f.expect(.ok, .post, "/appointments/\(held["id"] as! String)/cancel", [:], c)

            let today = BookingFixture.calendar.date(of: f.clock.now)
            #expect(try await f.problem(.get, "/admin/statistics/bookings", nil, f.scheduler) == "role-required")
            #expect(
                try await f.problem(.get, "/admin/statistics/bookings?from=2026-13-01", nil, f.admin) == "invalid-query"
            )
            let report = try await f.expect(
                .ok, .get,
                "/admin/statistics/bookings?from=\(BookingFixture.calendar.date(today, plusDays: -2)!)&to=\(today)",
                nil, f.admin)
            let days = report["days"] as! [[String: Any]]
            #expect(days.count == 3)
            let last = days[2]
            #expect(last["booked"] as? Int == 2 && last["cancelled"] as? Int == 1)
            #expect(last["byDepartment"] as? [String: Int] == ["hematology": 2])
            #expect(last["byChannel"] as? [String: Int] == ["app": 2])
            #expect(last["outOfProvince"] as? Int == 1 && last["outOfProvinceShare"] as? Double == 0.5)
            #expect((report["totals"] as! [String: Any])["booked"] as? Int == 2)
            #expect(days[0]["booked"] as? Int == 0)
        }
    }

    @Test func anAccountHoldsAtMostThreeUnpaidPlacesAndBreakGlassOnlyReads() async throws {
        try await BookingFixture.run { f in
            try await f.doctor("wang-jian")
            var sessions: [String] = []
            for (period, type) in [
                ("morning", "outpatient"), ("afternoon", "outpatient"), ("evening", "outpatient"),
                ("morning", "online"),
            ] {
                sessions.append(try await f.session(doctor: "wang-jian", period: period, visitType: type))
            }
            let (headers, patient) = try await f.patient("acct_a", residentID: Self.residentA)
            var booked: [String] = []
            for session in sessions.prefix(3) {
                booked.append(
                    (try await f.book(session, patient, headers)["appointment"] as! [String: Any])["id"] as! String)
            }
            #expect(
                try await f.problem(.post, "/appointments", ["sessionId": sessions[3], "patientId": patient], headers)
                    == "too-many-holds")
            // Paying one frees a hold for the next booking.
            let first = booked[0]
            let order = try await f.database.writer.read { db in
                try String.fetchOne(
                    db, sql: "SELECT id FROM payment_order WHERE appointment_id = ?", arguments: [first])!
            }
            _ = try await f.notify(f.paid(order))
            _ = try await f.book(sessions[3], patient, headers)

            // A doctor without a relationship reads the appointment by break-glass, but cannot complete it.
            var glass: HTTPFields = [
                .authorization: "Bearer \(try await TestIdentity.token("staff_li", roles: [.doctor]))"
            ]
            glass[BreakGlass.header] = "急诊核对挂号信息"
                .addingPercentEncoding(withAllowedCharacters: .alphanumerics)
            try await f.expect(.ok, .get, "/appointments/\(booked[0])", nil, glass)
            #expect(
                try await f.problem(.post, "/appointments/\(booked[0])/complete", [:], glass) == "relationship-required"
            )
            #expect(try await f.status(booked[0]) == "confirmed")
        }
    }
}
