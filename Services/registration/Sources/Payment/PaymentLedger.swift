import Foundation
import GRDB
import Hummingbird
import Logging
import ServiceLifecycle
import YunzhenAudit
import YunzhenContracts
import YunzhenIdentity
import YunzhenMessaging
import YunzhenServiceKit

/// Registration's side of payment: applies the gateway's notifications to orders and appointments (once, however
/// often they come), and runs the jobs that keep orders true to the gateway: refunds asked for, unpaid orders
/// closed, and orders whose notification never came queried (reconciliation).
struct PaymentLedger: Sendable {
    let database: any DatabaseWriter
    let gateway: any PaymentGateway
    let appointments: Appointments
    let logger: Logger
    /// How long a notification may be late before the order is queried.
    var reconcileAfter: TimeInterval = 60

    /// Who the audit trail names for the gateway's changes, in the request (a notification) that made them.
    static func audit(requestID: String) -> RequestAudit {
        RequestAudit(actor: "payment-gateway", actorRole: "system", requestID: requestID, clientAddress: "gateway")
    }

    // MARK: Notifications

    /// Applies a verified notification. Returns false when it was already applied (a repeat is harmless).
    /// Refuses, changing nothing, a notification about an unknown order or with another amount than the order's.
    @discardableResult
    func apply(_ notification: PaymentNotification, requestID: String = "", now: Date = Date()) async throws -> Bool {
        let audit = Self.audit(requestID: requestID)
        let changed = try await database.write { db -> Bool in
            switch notification {
            case .paid(let orderID, let transactionID, let amount, let paidAt):
                return try applyPaid(
                    orderID, transactionID: transactionID, amount: amount, paidAt: paidAt, now: now, audit: audit,
                    in: db)
            case .refunded(let orderID, let refundID, let amount, let refundedAt):
                return try applyRefunded(
                    orderID, refundID: refundID, amount: amount, refundedAt: refundedAt, audit: audit, in: db)
            }
        }
        if changed { logger.info("payment notification applied", metadata: ["notification": "\(notification)"]) }
        return changed
    }

    private func order(_ id: String, amount: Int, in db: Database) throws -> Row {
        guard
            let order = try Row.fetchOne(
                db,
                sql: """
                    SELECT payment_order.*, appointment.patient_id, appointment.status AS appointment_status,
                        appointment.hold_expires_at
                    FROM payment_order JOIN appointment ON appointment.id = payment_order.appointment_id
                    WHERE payment_order.id = ?
                    """,
                arguments: [id])
        else {
            throw Problem(.notFound, code: "unknown-order", detail: "There is no order `\(id)`.")
        }
        guard order["amount_fen"] as Int == amount else {
            throw Problem(
                .unprocessableContent, code: "amount-mismatch",
                detail: "The order is for \(order["amount_fen"] as Int) fen, not \(amount).")
        }
        return order
    }

    private func applyPaid(
        _ orderID: String, transactionID: String, amount: Int, paidAt: Date, now: Date, audit: RequestAudit,
        in db: Database
    ) throws -> Bool {
        let order = try order(orderID, amount: amount, in: db)
        guard ["created", "closed"].contains(order["status"] as String) else { return false }
        let appointmentID: String = order["appointment_id"]
        try db.execute(
            sql: "UPDATE payment_order SET status = 'paid', transaction_id = ?, paid_at = ? WHERE id = ?",
            arguments: [transactionID, paidAt, orderID])
        try Outbox.publish(
            PaymentSucceeded(
                orderID: orderID, appointmentID: appointmentID, amountFen: amount, gateway: gateway.name,
                transactionID: transactionID, paidAt: paidAt),
            source: Appointments.source, in: db)
        let stillHeld = order["appointment_status"] as String == "pending-payment"
        if stillHeld, paidAt <= order["hold_expires_at"] as Date {
            try appointments.confirm(appointmentID, now: now, in: db)
        } else {
            // Paid after the hold ended (the place may be someone else's by now): the money goes back.
            if stillHeld {
                try appointments.cancel(
                    try AppointmentRecords.row(appointmentID, in: db)!, reason: "hold-expired", note: "", now: now,
                    in: db)
            }
            try db.execute(
                sql: """
                    UPDATE payment_order SET status = 'refund-pending', refund_id = ?, refund_requested_at = ?
                    WHERE id = ?
                    """,
                arguments: ["rfd_" + Secrets.randomHex(bytes: 10), now, orderID])
            logger.notice("late payment will be refunded", metadata: ["order": "\(orderID)"])
        }
        try audit.record(.update, "payment-order", id: orderID, patient: order["patient_id"], in: db)
        return true
    }

    private func applyRefunded(
        _ orderID: String, refundID: String, amount: Int, refundedAt: Date, audit: RequestAudit, in db: Database
    ) throws -> Bool {
        let order = try order(orderID, amount: amount, in: db)
        guard order["refund_id"] as String? == refundID else {
            throw Problem(
                .unprocessableContent, code: "unknown-refund", detail: "Order `\(orderID)` has no refund `\(refundID)`."
            )
        }
        guard order["status"] as String == "refund-pending" else { return false }
        try db.execute(
            sql: "UPDATE payment_order SET status = 'refunded', refunded_at = ? WHERE id = ?",
            arguments: [refundedAt, orderID])
        try Outbox.publish(
            PaymentRefunded(
                orderID: orderID, appointmentID: order["appointment_id"], amountFen: amount, refundID: refundID,
                refundedAt: refundedAt),
            source: Appointments.source, in: db)
        try audit.record(.update, "payment-order", id: orderID, patient: order["patient_id"], in: db)
        return true
    }

    // MARK: Keeping orders true to the gateway

    /// One round of every job; returns what it did, for the logs and the tests.
    @discardableResult
    func reconcile(now: Date = Date()) async throws -> [String] {
        var done: [String] = []
        let (expired, missed) = try await database.write { db in
            (try appointments.expireHolds(now: now, in: db), try appointments.markNoShows(now: now, in: db))
        }
        if expired > 0 { done.append("\(expired) holds expired") }
        if missed > 0 { done.append("\(missed) no-shows") }

        // Refunds to ask for (idempotent at the gateway by refund id).
        let refunds = try await database.read { db in
            try Row.fetchAll(
                db,
                sql:
                    "SELECT id, refund_id, amount_fen FROM payment_order WHERE status = 'refund-pending' AND refund_accepted_at IS NULL"
            ).map { (order: $0["id"] as String, refund: $0["refund_id"] as String, amount: $0["amount_fen"] as Int) }
        }
        for (order, refund, amount) in refunds {
            do {
                try await gateway.refund(order: order, refundID: refund, amountFen: amount)
                try await database.write { db in
                    try db.execute(
                        sql: "UPDATE payment_order SET refund_accepted_at = ? WHERE id = ?", arguments: [now, order])
                }
                done.append("refund asked for \(order)")
            } catch {
                logger.warning("refund not accepted yet", metadata: ["order": "\(order)", "error": "\(error)"])
            }
        }

        // Orders closed here (expired or cancelled holds) are closed at the gateway too, so they cannot be paid.
        for id in try await database.read({ db in
            try String.fetchAll(
                db, sql: "SELECT id FROM payment_order WHERE status = 'closed' AND gateway_closed_at IS NULL")
        }) {
            do {
                let status = try await gateway.close(order: id)
                if case .paid(let transaction, let amount, let paidAt) = status {
                    try await apply(.paid(orderID: id, transactionID: transaction, amountFen: amount, paidAt: paidAt))
                }
                try await database.write { db in
                    try db.execute(
                        sql: "UPDATE payment_order SET gateway_closed_at = ? WHERE id = ?", arguments: [now, id])
                }
                done.append("closed \(id)")
            } catch {
                logger.warning(
                    "order not closed at the gateway yet", metadata: ["order": "\(id)", "error": "\(error)"])
            }
        }

        // Orders and refunds whose notification is late: ask the gateway.
        let late = now.addingTimeInterval(-reconcileAfter)
        let pending = try await database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT id, status, refund_id FROM payment_order
                    WHERE (status = 'created' AND created_at <= ?1 OR status = 'refund-pending' AND refund_accepted_at <= ?1)
                      AND (checked_at IS NULL OR checked_at <= ?1)
                    """,
                arguments: [late]
            ).map { (id: $0["id"] as String, status: $0["status"] as String, refund: $0["refund_id"] as String?) }
        }
        for (id, status, refund) in pending {
            do {
                if status == "created" {
                    if case .paid(let transaction, let amount, let paidAt) = try await gateway.query(order: id) {
                        try await apply(
                            .paid(orderID: id, transactionID: transaction, amountFen: amount, paidAt: paidAt))
                        done.append("found \(id) paid")
                    }
                } else if let refund, case .succeeded(let amount, let at) = try await gateway.queryRefund(refund) {
                    try await apply(.refunded(orderID: id, refundID: refund, amountFen: amount, refundedAt: at))
                    done.append("found \(id) refunded")
                }
                try await database.write { db in
                    try db.execute(sql: "UPDATE payment_order SET checked_at = ? WHERE id = ?", arguments: [now, id])
                }
            } catch {
                logger.warning("reconciliation failed", metadata: ["order": "\(id)", "error": "\(error)"])
            }
        }
        return done
    }
}

/// Runs `PaymentLedger.reconcile` every second: holds expire on time, no-shows are marked after their session,
/// refunds reach the gateway, and late notifications are made up for.
struct BookingWorker: Service {
    let ledger: PaymentLedger
    let interval: Duration

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let done = try await ledger.reconcile()
                if !done.isEmpty { ledger.logger.info("booking jobs", metadata: ["done": "\(done)"]) }
            } catch {
                ledger.logger.error("booking jobs failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }
}
