import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import Logging
import ServiceLifecycle
import YunzhenCallout
import YunzhenIdentity
import YunzhenMessaging
import YunzhenServiceKit

/// Development's payment provider, behaving as WeChat Pay or Alipay do: it speaks the provider contract
/// (`/sandbox-pay/api/…`, signed requests and answers), shows a cashier page the patient opens
/// (`/sandbox-pay/pay/{order}`: pay or decline), and sends signed notifications of payments and refunds to the
/// notify URL over libcurl, retrying with backoff until they are acknowledged with `{"code":"SUCCESS"}`. It keeps
/// its own database, as a provider would: registration's `HTTPPaymentGateway` reaches it only over HTTP.
///
/// Production refuses it (`YUNZHEN_PAYMENT_GATEWAY=sandbox` only with `YUNZHEN_ENVIRONMENT=development`).
final class SandboxPaymentProvider: Service, Sendable {
    let database: DatabasePool
    let signing: MessageSigning
    let client: CalloutClient
    let logger: Logger
    /// Rung when a notification is queued, so it leaves at once rather than at the next poll.
    private let queued = WakeSignal()

    init(file: URL, signing: MessageSigning, client: CalloutClient, logger: Logger) throws {
        // WAL, as every yunzhen database: a rollback journal costs several syncs per commit.
        database = try DatabasePool(path: file.path)
        self.signing = signing
        self.client = client
        self.logger = logger
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: sandbox provider") { db in
            try db.execute(
                sql: """
                    CREATE TABLE orders (id TEXT PRIMARY KEY, amount_fen INTEGER NOT NULL, description TEXT NOT NULL,
                        notify_url TEXT NOT NULL, expires_at DATETIME NOT NULL, status TEXT NOT NULL,
                        transaction_id TEXT, paid_at DATETIME, created_at DATETIME NOT NULL);
                    CREATE TABLE refunds (id TEXT PRIMARY KEY, order_id TEXT NOT NULL REFERENCES orders,
                        amount_fen INTEGER NOT NULL, status TEXT NOT NULL, refunded_at DATETIME);
                    CREATE TABLE notifications (id INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL,
                        body BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at DATETIME NOT NULL,
                        delivered_at DATETIME, last_error TEXT);
                    CREATE INDEX notifications_due ON notifications (next_at) WHERE delivered_at IS NULL;
                    CREATE INDEX refunds_order ON refunds (order_id);
                    """)
        }
        try migrator.migrate(database)
    }

    // MARK: The notifier

    /// Delivers due notifications, several at once as a provider does; a failure waits 1, 2, 4 … up to 60 seconds
    /// before the next try.
    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let due = try await database.read { db in
                try Row.fetchAll(
                    db,
                    sql: "SELECT * FROM notifications WHERE delivered_at IS NULL AND next_at <= ? ORDER BY id LIMIT 20",
                    arguments: [Date()]
                ).map {
                    (
                        id: $0["id"] as Int64, url: $0["url"] as String, body: Array($0["body"] as Data),
                        attempts: $0["attempts"] as Int
                    )
                }
            }
            await withTaskGroup(of: Void.self) { group in
                for notification in due { group.addTask { await self.deliver(notification) } }
            }
            if due.isEmpty { await queued.wait(timeout: .milliseconds(500)) }
        }
    }

    private func deliver(_ notification: (id: Int64, url: String, body: [UInt8], attempts: Int)) async {
        let (id, url, body) = (notification.id, notification.url, notification.body)
        var failure: String?
        do {
            let response = try await client.execute(
                CalloutRequest(
                    method: "POST", url: url,
                    headers: [(name: "Content-Type", value: "application/json")] + signing.headers(for: body),
                    body: body, timeout: .seconds(5)))
            struct Ack: Decodable { var code: String }
            let ack = try? JSONDecoder().decode(Ack.self, from: Data(response.body))
            if !(200..<300).contains(response.status) || ack?.code != "SUCCESS" {
                failure = "HTTP \(response.status): \(String(decoding: response.body.prefix(200), as: UTF8.self))"
            }
        } catch {
            failure = "\(error)"
        }
        let attempts = notification.attempts + 1
        let outcome = failure
        try? await database.write { db in
            if let failure = outcome {
                let wait = min(60, 1 << min(attempts - 1, 6))
                try db.execute(
                    sql: "UPDATE notifications SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?",
                    arguments: [attempts, Date().addingTimeInterval(TimeInterval(wait)), failure, id])
            } else {
                try db.execute(
                    sql: "UPDATE notifications SET attempts = ?, delivered_at = ? WHERE id = ?",
                    arguments: [attempts, Date(), id])
            }
        }
        if let failure {
            logger.warning(
                "sandbox payment notification not acknowledged; will retry",
                metadata: ["attempt": "\(attempts)", "error": "\(failure)"])
        }
    }

    private static func enqueue(_ notification: PaymentWire.Notification, to url: String, in db: Database) throws {
        try db.execute(
            sql: "INSERT INTO notifications (url, body, next_at) VALUES (?, ?, ?)",
            arguments: [url, try PaymentWire.encoder.encode(notification), Date()])
    }

    // MARK: Routes

    func add(to router: Router<ServiceRequestContext>) {
        let api = router.group("sandbox-pay/api")
        api.post("orders") { request, context in
            try await self.answer(request, context) { (order: PaymentWire.OrderRequest, db) in
                if let existing = try Row.fetchOne(
                    db, sql: "SELECT id FROM orders WHERE id = ?", arguments: [order.orderId]),
                    (existing["id"] as String) == order.orderId
                {
                    return PaymentWire.OrderCreated(orderId: order.orderId, payUrl: Self.payURL(order.orderId))
                }
                guard order.amountFen > 0 else { throw Problem.badRequest("`amountFen` must be positive.") }
                try db.execute(
                    sql: """
                        INSERT INTO orders (id, amount_fen, description, notify_url, expires_at, status, created_at)
                        VALUES (?, ?, ?, ?, ?, 'unpaid', ?)
                        """,
                    arguments: [
                        order.orderId, order.amountFen, order.description, order.notifyUrl, order.expiresAt, Date(),
                    ])
                return PaymentWire.OrderCreated(orderId: order.orderId, payUrl: Self.payURL(order.orderId))
            }
        }
        api.post("orders/query") { request, context in
            try await self.answer(request, context) { (reference: PaymentWire.OrderReference, db) in
                try Self.state(reference.orderId, in: db)
            }
        }
        api.post("orders/close") { request, context in
            try await self.answer(request, context) { (reference: PaymentWire.OrderReference, db) in
                try db.execute(
                    sql: "UPDATE orders SET status = 'closed' WHERE id = ? AND status = 'unpaid'",
                    arguments: [reference.orderId])
                return try Self.state(reference.orderId, in: db)
            }
        }
        api.post("refunds") { request, context in
            let answer = try await self.answer(request, context) { (refund: PaymentWire.RefundRequest, db) in
                if let existing = try Row.fetchOne(
                    db, sql: "SELECT * FROM refunds WHERE id = ?", arguments: [refund.refundId])
                {
                    return PaymentWire.RefundState(
                        refundId: refund.refundId, status: existing["status"], amountFen: existing["amount_fen"],
                        refundedAt: existing["refunded_at"])
                }
                guard
                    let order = try Row.fetchOne(
                        db, sql: "SELECT * FROM orders WHERE id = ? AND status = 'paid'", arguments: [refund.orderId])
                else { throw Problem(.conflict, code: "not-paid", detail: "Order \(refund.orderId) is not paid.") }
                let refunded =
                    try Int.fetchOne(
                        db, sql: "SELECT coalesce(sum(amount_fen), 0) FROM refunds WHERE order_id = ?",
                        arguments: [refund.orderId]) ?? 0
                guard refund.amountFen > 0, refunded + refund.amountFen <= order["amount_fen"] as Int else {
                    throw Problem(
                        .conflict, code: "refund-exceeds-payment", detail: "The refund is more than what is left paid.")
                }
                // A provider settles a refund a little later and notifies it; here at once, notified by the loop.
                let now = Date()
                try db.execute(
                    sql:
                        "INSERT INTO refunds (id, order_id, amount_fen, status, refunded_at) VALUES (?, ?, ?, 'succeeded', ?)",
                    arguments: [refund.refundId, refund.orderId, refund.amountFen, now])
                try Self.enqueue(
                    PaymentWire.Notification(
                        event: "refund.succeeded", orderId: refund.orderId, transactionId: nil,
                        refundId: refund.refundId, amountFen: refund.amountFen, at: now),
                    to: refund.notifyUrl, in: db)
                return PaymentWire.RefundState(
                    refundId: refund.refundId, status: "processing", amountFen: refund.amountFen, refundedAt: nil)
            }
            self.queued.ring()
            return answer
        }
        api.post("refunds/query") { request, context in
            try await self.answer(request, context) { (reference: PaymentWire.RefundReference, db) in
                guard
                    let row = try Row.fetchOne(
                        db, sql: "SELECT * FROM refunds WHERE id = ?", arguments: [reference.refundId])
                else { throw Problem.notFound("No refund \(reference.refundId).") }
                return PaymentWire.RefundState(
                    refundId: reference.refundId, status: row["status"], amountFen: row["amount_fen"],
                    refundedAt: row["refunded_at"])
            }
        }

        // The cashier: what the patient's phone opens.
        router.get("sandbox-pay/pay/{order}") { _, context -> Response in
            let id = try context.parameters.require("order")
            let row = try await self.database.read { db in
                try Row.fetchOne(db, sql: "SELECT * FROM orders WHERE id = ?", arguments: [id])
            }
            guard let row else { throw Problem.notFound("No order \(id).") }
            return Self.page(
                title: "云诊 沙箱收银台 (sandbox cashier)",
                body: """
                    <p>订单 \(Self.escape(id))</p><p>\(Self.escape(row["description"]))</p>
                    <p class="amount">¥\(Self.yuan(row["amount_fen"]))</p><p>状态 status: \(Self.escape(row["status"]))</p>
                    <form method="post"><button name="action" value="pay">支付 Pay</button>
                    <button name="action" value="decline">取消 Decline</button></form>
                    """)
        }
        router.post("sandbox-pay/pay/{order}") { request, context -> Response in
            let id = try context.parameters.require("order")
            let form = String(buffer: try await request.body.collect(upTo: 4096))
            let pay = form.split(separator: "&").contains("action=pay")
            let outcome: String = try await self.database.write { db in
                guard let row = try Row.fetchOne(db, sql: "SELECT * FROM orders WHERE id = ?", arguments: [id]) else {
                    throw Problem.notFound("No order \(id).")
                }
                guard pay else { return "已取消支付 Payment declined." }
                switch row["status"] as String {
                case "paid": return "已支付 Already paid."
                case "closed": return "订单已关闭 The order is closed."
                default: break
                }
                let now = Date()
                guard (row["expires_at"] as Date) > now else { return "订单已过期 The order has expired." }
                let transaction = "sbx" + Secrets.randomHex(bytes: 10)
                try db.execute(
                    sql: "UPDATE orders SET status = 'paid', transaction_id = ?, paid_at = ? WHERE id = ?",
                    arguments: [transaction, now, id])
                try Self.enqueue(
                    PaymentWire.Notification(
                        event: "payment.succeeded", orderId: id, transactionId: transaction, refundId: nil,
                        amountFen: row["amount_fen"], at: now),
                    to: row["notify_url"], in: db)
                return "支付成功 Paid."
            }
            self.queued.ring()
            return Self.page(title: "云诊 沙箱收银台 (sandbox cashier)", body: "<p>\(Self.escape(outcome))</p>")
        }
    }

    /// Verifies a signed API request, runs `work` in a transaction, and answers signed JSON (errors as problems).
    private func answer<Input: Decodable & Sendable, Output: Encodable & Sendable>(
        _ request: Request, _ context: ServiceRequestContext,
        _ work: @escaping @Sendable (Input, Database) throws -> Output
    ) async throws -> Response {
        let body = Array(buffer: try await request.body.collect(upTo: 64 * 1024))
        do {
            try signing.verify(body: body, header: { request.headers[HTTPField.Name($0)!] })
        } catch {
            throw Problem(.unauthorized, code: "bad-signature", detail: "The request is not authentic: \(error).")
        }
        guard let input = try? PaymentWire.decoder.decode(Input.self, from: Data(body)) else {
            throw Problem.badRequest("The body is not what this operation takes.")
        }
        let output = try await database.write { db in try work(input, db) }
        let bytes = Array(try PaymentWire.encoder.encode(output))
        var headers: HTTPFields = [.contentType: "application/json"]
        for (name, value) in signing.headers(for: bytes) { headers[HTTPField.Name(name)!] = value }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    private static func state(_ id: String, in db: Database) throws -> PaymentWire.OrderState {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM orders WHERE id = ?", arguments: [id]) else {
            return PaymentWire.OrderState(orderId: id, status: "unknown")
        }
        return PaymentWire.OrderState(
            orderId: id, status: row["status"], transactionId: row["transaction_id"], amountFen: row["amount_fen"],
            paidAt: row["paid_at"])
    }

    /// The cashier as the patient's browser reaches it, through the edge.
    static func payURL(_ order: String) -> String { "/api/registration/sandbox-pay/pay/\(order)" }

    static func yuan(_ fen: Int) -> String { String(format: "%d.%02d", fen / 100, fen % 100) }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func page(title: String, body: String) -> Response {
        let html = """
            <!doctype html><html lang="zh-CN"><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1"><title>\(title)</title>
            <body><h1>\(title)</h1>\(body)</body></html>
            """
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/html; charset=utf-8",
                .contentSecurityPolicy: "default-src 'none'; form-action 'self'; style-src 'unsafe-inline'",
            ],
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}
