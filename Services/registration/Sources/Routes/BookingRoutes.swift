import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import YunzhenAudit
import YunzhenContracts
import YunzhenIdentity
import YunzhenServiceKit

/// Doctors and their sessions (public), publishing and stopping sessions (schedulers), booking and an
/// appointment's life (patients; the doctor completes it), and the payment gateway's notifications.
struct BookingRoutes {
    let database: any DatabaseWriter
    let verifier: TokenVerifier
    let setup: BookingSetup

    var catalogue: DoctorCatalogue { DoctorCatalogue(database: database) }
    var appointments: Appointments {
        Appointments(database: database, policy: setup.policy, gateway: setup.gateway.name)
    }
    var schedules: Schedules { Schedules(database: database, appointments: appointments) }
    var ledger: PaymentLedger {
        PaymentLedger(database: database, gateway: setup.gateway, appointments: appointments, logger: setup.logger)
    }
    var access: PatientAccess { PatientAccess(database: database, relationships: RegistrationRelationships()) }

    struct DoctorList: ResponseEncodable { var doctors: [DoctorCatalogue.DoctorView] }
    struct SessionList: ResponseEncodable { var sessions: [Schedules.SessionView] }
    struct AppointmentList: ResponseEncodable { var appointments: [AppointmentView] }
    struct StopRequest: Decodable { var reason: String }
    struct CancelRequest: Decodable { var note: String? }
    struct Stopped: ResponseEncodable {
        var session: Schedules.SessionView
        var cancelledAppointments: Int
    }
    /// A booking, with what the app needs to pay it (absent for a free session, or when the gateway could not
    /// be reached: `POST /appointments/{id}/payment` asks again).
    struct Booked: ResponseEncodable {
        var appointment: AppointmentView
        var payment: PaymentParameters?
        var paymentError: String?
    }
    struct Acknowledgement: ResponseEncodable {
        var code: String
        var message: String?
    }

    func add(to router: Router<ServiceRequestContext>) {
        addCatalogue(to: router)
        addSchedules(to: router)
        addAppointments(to: router)
        addFHIR(to: router)
        router.group("admin/statistics").add(middleware: AuthenticationMiddleware(verifier: verifier))
            .get("bookings") { request, context -> BookingStatistics.Report in
                _ = try context.requireRole(.admin)
                let query = request.uri.queryParameters
                let range = try StatisticsRange(
                    from: query["from"].map(String.init), to: query["to"].map(String.init), now: setup.clock())
                return try await BookingStatistics(database: database, province: setup.province).report(range)
            }
        router.post("payments/notify") { request, context -> Acknowledgement in
            let body = Array(buffer: try await request.body.collect(upTo: 64 * 1024))
            let notification: PaymentNotification
            do {
                notification = try setup.gateway.notification(
                    body: body, header: { request.headers[HTTPField.Name($0)!] })
            } catch {
                context.logger.warning("payment notification refused", metadata: ["reason": "\(error)"])
                throw Problem(
                    .unauthorized, code: "notification-refused", detail: "The notification was refused: \(error).")
            }
            try await ledger.apply(notification, requestID: context.requestID, now: setup.clock())
            return Acknowledgement(code: "SUCCESS")
        }
    }

    // MARK: Doctors

    private func addCatalogue(to router: Router<ServiceRequestContext>) {
        router.get("doctors") { request, _ -> DoctorList in
            let query = request.uri.queryParameters
            return DoctorList(
                doctors: try await catalogue.search(
                    department: query["department"].map(String.init), query: query["q"].map(String.init),
                    specialty: query["specialty"].map(String.init), now: setup.clock()))
        }
        router.get("doctors/{id}") { _, context -> DoctorCatalogue.DoctorView in
            try await catalogue.doctor(try context.parameters.require("id"), now: setup.clock())
        }
        router.get("doctors/{id}/photo") { _, context -> Response in
            let photo = try await catalogue.photo(try context.parameters.require("id"))
            return UploadedImage.response(photo.bytes, contentType: photo.contentType)
        }
        let admin = router.group("admin/doctors").add(middleware: AuthenticationMiddleware(verifier: verifier))
        admin.put("{id}") { request, context in
            let principal = try context.requireRole(.admin)
            let input = try await request.decodeJSON(as: DoctorCatalogue.DoctorInput.self, context: context)
            let (view, created) = try await catalogue.save(
                try context.parameters.require("id"), input, audit: context.audit(principal))
            return EditedResponse(status: created ? .created : .ok, response: view)
        }
        admin.put("{id}/photo") { request, context in
            let principal = try context.requireRole(.admin)
            let bytes = try await request.body.collect(upTo: 512 * 1024 + 1)
            try await catalogue.setPhoto(
                try context.parameters.require("id"), bytes: Data(buffer: bytes), audit: context.audit(principal))
            return Response(status: .noContent)
        }
    }

    // MARK: Sessions

    private func addSchedules(to router: Router<ServiceRequestContext>) {
        router.get("sessions") { request, _ -> SessionList in
            let query = request.uri.queryParameters
            let today = HospitalCalendar.shared.date(of: setup.clock())
            let from = query["from"].map(String.init) ?? today
            let to =
                query["to"].map(String.init) ?? HospitalCalendar.shared.date(from, plusDays: 13) ?? from
            return SessionList(
                sessions: try await schedules.list(
                    doctor: query["doctor"].map(String.init), department: query["department"].map(String.init),
                    from: from, to: to, now: setup.clock()))
        }
        router.get("sessions/{id}") { _, context -> Schedules.SessionView in
            try await schedules.session(try context.parameters.require("id"), now: setup.clock())
        }
        let write = router.group("sessions").add(middleware: AuthenticationMiddleware(verifier: verifier))
        write.post { request, context in
            let principal = try context.requireRole(.scheduler, .admin)
            let input = try await request.decodeJSON(as: Schedules.SessionInput.self, context: context)
            let view = try await schedules.publish(
                input, by: principal, audit: context.audit(principal), now: setup.clock())
            return EditedResponse(status: .created, response: view)
        }
        write.post("{id}/stop") { request, context -> Stopped in
            let principal = try context.requireRole(.scheduler, .admin)
            let input = try await request.decodeJSON(as: StopRequest.self, context: context)
            let (view, cancelled) = try await schedules.stop(
                try context.parameters.require("id"), reason: input.reason, by: principal,
                audit: context.audit(principal), now: setup.clock())
            context.logger.notice(
                "session stopped", metadata: ["session": "\(view.id)", "cancelled": "\(cancelled)"])
            return Stopped(session: view, cancelledAppointments: cancelled)
        }
    }

    // MARK: Appointments

    private func addAppointments(to router: Router<ServiceRequestContext>) {
        let group = router.group("appointments").add(middleware: AuthenticationMiddleware(verifier: verifier))
        group.post { request, context in
            let principal = try context.requireRole(.patient)
            let input = try await request.decodeJSON(as: Appointments.BookingRequest.self, context: context)
            let appointments = self.appointments
            let now = setup.clock()
            let view = try await access.withPatient(
                input.patientId, .create, "appointment", id: nil, request: request, context: context
            ) { db, _ in
                try appointments.book(input, account: principal.subject, now: now, in: db)
            }
            context.logger.info(
                "appointment booked", metadata: ["appointment": "\(view.id)", "session": "\(view.sessionId)"])
            var booked = Booked(appointment: view)
            if view.payment != nil { (booked.payment, booked.paymentError) = await paymentParameters(view) }
            return EditedResponse(status: .created, response: booked)
        }
        router.group("me/appointments").add(middleware: AuthenticationMiddleware(verifier: verifier))
            .get { _, context -> AppointmentList in
                let principal = try context.requireRole(.patient)
                let appointments = self.appointments
                return try await database.write { db in
                    let list = try appointments.list(account: principal.subject, in: db)
                    try context.audit(principal).recordReads(
                        "appointment", of: list, id: \.id, patient: \.patientId, in: db)
                    return AppointmentList(appointments: list)
                }
            }
        group.get("{id}") { request, context -> AppointmentView in
            try await onAppointment(request, context, .read) { _, db, _ in
                AppointmentRecords.view(try AppointmentRecords.row(try context.parameters.require("id"), in: db)!)
            }
        }
        group.post("{id}/payment") { request, context -> Booked in
            let view = try await onAppointment(request, context, .read, patientOnly: true) { _, db, _ in
                AppointmentRecords.view(try AppointmentRecords.row(try context.parameters.require("id"), in: db)!)
            }
            guard view.status == "pending-payment", view.payment?.status == "created" else {
                throw Problem(
                    .conflict, code: "nothing-to-pay", detail: "This appointment is \(view.status): nothing to pay.")
            }
            var booked = Booked(appointment: view)
            (booked.payment, booked.paymentError) = await paymentParameters(view)
            return booked
        }
        group.post("{id}/cancel") { request, context -> AppointmentView in
            let input = try await request.decodeJSON(as: CancelRequest.self, context: context)
            let appointments = self.appointments
            return try await onAppointment(request, context, .update, patientOnly: true) { id, db, now in
                try appointments.cancelByPatient(id, note: input.note, now: now, in: db)
            }
        }
        group.post("{id}/check-in") { request, context -> AppointmentView in
            let appointments = self.appointments
            return try await onAppointment(request, context, .update, patientOnly: true) { id, db, now in
                try appointments.checkIn(id, now: now, in: db)
            }
        }
        group.post("{id}/complete") { request, context -> AppointmentView in
            _ = try context.requireRole(.doctor, .nurse)
            let appointments = self.appointments
            return try await onAppointment(request, context, .update, relationshipOnly: true) { id, db, now in
                try appointments.complete(id, now: now, in: db)
            }
        }
    }

    // MARK: FHIR R4

    private func addFHIR(to router: Router<ServiceRequestContext>) {
        let fhirBase = "/api/registration/fhir"
        router.get("fhir/Schedule/{id}") { _, context -> Response in
            let id = try context.parameters.require("id")
            guard let row = try await database.read({ db in try Self.scheduleRow(id, in: db) }) else {
                throw Problem.notFound("There is no Schedule `\(id)`.")
            }
            return try FHIRViews.response(FHIRViews.schedule(row))
        }
        router.get("fhir/Slot/{id}") { _, context -> Response in
            let id = try context.parameters.require("id")
            let now = setup.clock()
            let rows = try await database.read { db in try Self.slotRows("slot.id = :value", id, now: now, in: db) }
            guard let row = rows.first else { throw Problem.notFound("There is no Slot `\(id)`.") }
            return try FHIRViews.response(FHIRViews.slot(row))
        }
        router.get("fhir/Slot") { request, _ -> Response in
            guard let schedule = request.uri.queryParameters["schedule"].map(String.init) else {
                throw Problem(.badRequest, code: "invalid-query", detail: "Search slots by `schedule` (a Schedule id).")
            }
            let now = setup.clock()
            let rows = try await database.read { db in
                try Self.slotRows(
                    "slot.session_id = :value", schedule.replacingOccurrences(of: "Schedule/", with: ""), now: now,
                    in: db)
            }
            return try FHIRViews.response(FHIRViews.bundle(rows.map(FHIRViews.slot), base: fhirBase))
        }
        let signedIn = router.group("fhir/Appointment").add(middleware: AuthenticationMiddleware(verifier: verifier))
        signedIn.get("{id}") { request, context -> Response in
            let resource = try await onAppointment(request, context, .read) { id, db, _ in
                try FHIRViews.response(FHIRViews.appointment(try AppointmentRecords.row(id, in: db)!))
            }
            return resource
        }
        signedIn.get { request, context -> Response in
            guard let patient = request.uri.queryParameters["patient"].map(String.init) else {
                throw Problem(
                    .badRequest, code: "invalid-query", detail: "Search appointments by `patient` (a Patient id).")
            }
            let id = patient.replacingOccurrences(of: "Patient/", with: "")
            return try await access.withPatient(id, .read, "appointment", id: nil, request: request, context: context) {
                db, _ in
                let rows = try Row.fetchAll(
                    db, sql: AppointmentRecords.select + " WHERE appointment.patient_id = ? ORDER BY slot.starts_at",
                    arguments: [id])
                return try FHIRViews.response(FHIRViews.bundle(rows.map(FHIRViews.appointment), base: fhirBase))
            }
        }
    }

    static func scheduleRow(_ id: String, in db: Database) throws -> Row? {
        try Row.fetchOne(
            db,
            sql: """
                SELECT session.*, doctor.name AS doctor_name, department.name AS department_name
                FROM session JOIN doctor ON doctor.id = session.doctor_id
                JOIN department ON department.id = session.department_id
                WHERE session.id = ?
                """,
            arguments: [id])
    }

    static func slotRows(_ condition: String, _ argument: String, now: Date, in db: Database) throws -> [Row] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT slot.*, session.visit_type, session.status AS session_status,
                    \(AppointmentRecords.slotIsFree) AS free
                FROM slot JOIN session ON session.id = slot.session_id
                LEFT JOIN appointment ON appointment.id = slot.appointment_id
                WHERE \(condition) ORDER BY slot.visit_number
                """,
            arguments: ["now": now, "value": argument])
    }

    /// Runs `work` on appointment `{id}` for a caller the access rule lets in to its patient; anyone else, and an
    /// unknown id, gets the same 404. With `patientOnly`, staff may read but not act for the patient; with
    /// `relationshipOnly`, break-glass (which is for reading a record in an emergency) does not let staff act.
    private func onAppointment<Value: Sendable>(
        _ request: Request, _ context: ServiceRequestContext, _ action: AuditAction,
        patientOnly: Bool = false, relationshipOnly: Bool = false,
        _ work: @escaping @Sendable (String, Database, Date) throws -> Value
    ) async throws -> Value {
        let id = try context.parameters.require("id")
        if patientOnly { _ = try context.requireRole(.patient) }
        let now = setup.clock()
        let patientOf: @Sendable (Database) throws -> String? = { db in
            try String.fetchOne(db, sql: "SELECT patient_id FROM appointment WHERE id = ?", arguments: [id])
        }
        return try await access.withResource(
            "appointment", id: id, action, request: request, context: context,
            refusal: Appointments.noAppointment(id), patientOf: patientOf
        ) { db, basis in
            if relationshipOnly, case .breakGlass = basis {
                throw Problem(
                    .forbidden, code: "relationship-required",
                    detail: "Break-glass access lets you read this record, not act on it.")
            }
            return try work(id, db, now)
        }
    }

    /// Opens (or re-opens: the gateway is idempotent by order id) the order at the gateway.
    private func paymentParameters(_ view: AppointmentView) async -> (PaymentParameters?, String?) {
        guard let order = view.payment, let expires = view.holdExpiresAt else { return (nil, nil) }
        do {
            let parameters = try await setup.gateway.createOrder(
                PaymentOrder(
                    orderId: order.orderId, amountFen: order.amountFen,
                    description: "挂号费 \(view.departmentName) \(view.doctorName) \(view.date)", expiresAt: expires))
            return (parameters, nil)
        } catch {
            setup.logger.warning(
                "payment order not opened", metadata: ["order": "\(order.orderId)", "error": "\(error)"])
            return (nil, "The payment service did not answer; try paying again in a moment (\(error)).")
        }
    }
}
