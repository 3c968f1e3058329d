import Foundation
import YunzhenCallout

/// A mobile payment provider (WeChat Pay, Alipay, or the hospital's payment platform in front of them): orders
/// are created for a fee, paid by the patient on the provider's page, announced by a signed notification to our
/// notify endpoint (retried by the provider until we acknowledge it), queried when a notification never comes,
/// closed when a hold expires, and refunded (the refund announced the same way). Money is whole fen.
protocol PaymentGateway: Sendable {
    /// Recorded on each order (`sandbox`, `http`).
    var name: String { get }
    /// Opens an order at the provider; what the app needs to pay it.
    func createOrder(_ order: PaymentOrder) async throws(PaymentGatewayError) -> PaymentParameters
    func query(order: String) async throws(PaymentGatewayError) -> PaymentStatus
    /// Closes an unpaid order so it can no longer be paid; `.paid` when it was paid meanwhile.
    func close(order: String) async throws(PaymentGatewayError) -> PaymentStatus
    /// Asks for a refund; idempotent by `refundID`. The outcome is notified (or found by `queryRefund`).
    func refund(order: String, refundID: String, amountFen: Int) async throws(PaymentGatewayError)
    func queryRefund(_ refundID: String) async throws(PaymentGatewayError) -> RefundStatus
    /// Checks a notification's signature and reads it.
    func notification(body: [UInt8], header: (String) -> String?) throws(PaymentNotificationRejection)
        -> PaymentNotification
}

struct PaymentOrder: Codable, Sendable, Equatable {
    var orderId: String
    var amountFen: Int
    var description: String
    /// The provider refuses payment after this (the end of the hold).
    var expiresAt: Date
}

/// What the patient's app needs to pay.
struct PaymentParameters: Codable, Sendable, Equatable {
    var orderId: String
    var amountFen: Int
    /// The provider's page (an H5 cashier or a deep link into its app).
    var payUrl: String
    var expiresAt: Date
}

enum PaymentStatus: Sendable, Equatable {
    case paid(transactionID: String, amountFen: Int, paidAt: Date)
    case unpaid
    case closed
    /// The provider has no such order.
    case unknown
}

enum RefundStatus: Sendable, Equatable {
    case succeeded(amountFen: Int, refundedAt: Date)
    case processing
    case failed(String)
}

enum PaymentNotification: Sendable, Equatable {
    case paid(orderID: String, transactionID: String, amountFen: Int, paidAt: Date)
    case refunded(orderID: String, refundID: String, amountFen: Int, refundedAt: Date)
}

enum PaymentGatewayError: Error, Equatable, CustomStringConvertible {
    /// The provider answered and said no.
    case refused(String)
    /// No usable answer: unreachable, too slow, 5xx, or an answer whose signature does not verify.
    case unavailable(String)

    var description: String {
        switch self {
        case .refused(let reason): "the payment provider refused: \(reason)"
        case .unavailable(let reason): "the payment provider could not be reached: \(reason)"
        }
    }
}

enum PaymentNotificationRejection: Error, Equatable, CustomStringConvertible {
    case signature(MessageSigning.Rejection)
    case unreadable(String)

    var description: String {
        switch self {
        case .signature(let rejection): "the notification is not authentic: \(rejection)"
        case .unreadable(let reason): "the notification cannot be read: \(reason)"
        }
    }
}

/// The JSON bodies of the provider contract (Services/registration/README.md, "Payment provider contract").
enum PaymentWire {
    struct Notification: Codable, Sendable {
        /// `payment.succeeded` or `refund.succeeded`
        var event: String
        var orderId: String
        var transactionId: String?
        var refundId: String?
        var amountFen: Int
        var at: Date
    }
    struct OrderRequest: Codable, Sendable {
        var orderId: String
        var amountFen: Int
        var description: String
        var expiresAt: Date
        var notifyUrl: String
    }
    struct OrderCreated: Codable, Sendable {
        var orderId: String
        var payUrl: String
    }
    struct OrderReference: Codable, Sendable {
        var orderId: String
    }
    struct OrderState: Codable, Sendable {
        var orderId: String
        /// paid, unpaid, closed, unknown
        var status: String
        var transactionId: String?
        var amountFen: Int?
        var paidAt: Date?
    }
    struct RefundRequest: Codable, Sendable {
        var orderId: String
        var refundId: String
        var amountFen: Int
        var notifyUrl: String
    }
    struct RefundReference: Codable, Sendable {
        var refundId: String
    }
    struct RefundState: Codable, Sendable {
        var refundId: String
        /// processing, succeeded, failed
        var status: String
        var amountFen: Int?
        var refundedAt: Date?
        var reason: String?
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    static func readNotification(
        body: [UInt8], header: (String) -> String?, signing: MessageSigning
    ) throws(PaymentNotificationRejection) -> PaymentNotification {
        do {
            try signing.verify(body: body, header: header)
        } catch {
            throw .signature(error)
        }
        guard let wire = try? decoder.decode(Notification.self, from: Data(body)) else {
            throw .unreadable("not a notification object")
        }
        switch (wire.event, wire.transactionId, wire.refundId) {
        case ("payment.succeeded", let transaction?, _):
            return .paid(orderID: wire.orderId, transactionID: transaction, amountFen: wire.amountFen, paidAt: wire.at)
        case ("refund.succeeded", _, let refund?):
            return .refunded(orderID: wire.orderId, refundID: refund, amountFen: wire.amountFen, refundedAt: wire.at)
        default:
            throw .unreadable("unknown event `\(wire.event)` or a missing id")
        }
    }
}

/// The production adapter: the provider contract over HTTPS through the libcurl client. Requests and answers are
/// signed (`MessageSigning`); an answer whose signature does not verify is treated as no answer.
struct HTTPPaymentGateway: PaymentGateway {
    let client: CalloutClient
    /// The provider's API root, e.g. `https://pay.example.com/v1`.
    let baseURL: String
    /// Where the provider sends notifications: our `/payments/notify` as the internet reaches it.
    let notifyURL: String
    let signing: MessageSigning
    let timeout: Duration
    var name: String { "http" }

    func createOrder(_ order: PaymentOrder) async throws(PaymentGatewayError) -> PaymentParameters {
        let created: PaymentWire.OrderCreated = try await call(
            "orders",
            PaymentWire.OrderRequest(
                orderId: order.orderId, amountFen: order.amountFen, description: order.description,
                expiresAt: order.expiresAt, notifyUrl: notifyURL))
        guard created.orderId == order.orderId else { throw .unavailable("the answer is about another order") }
        return PaymentParameters(
            orderId: order.orderId, amountFen: order.amountFen, payUrl: created.payUrl, expiresAt: order.expiresAt)
    }

    func query(order: String) async throws(PaymentGatewayError) -> PaymentStatus {
        let state: PaymentWire.OrderState = try await call("orders/query", PaymentWire.OrderReference(orderId: order))
        return try Self.status(state, order: order)
    }

    func close(order: String) async throws(PaymentGatewayError) -> PaymentStatus {
        let state: PaymentWire.OrderState = try await call("orders/close", PaymentWire.OrderReference(orderId: order))
        return try Self.status(state, order: order)
    }

    func refund(order: String, refundID: String, amountFen: Int) async throws(PaymentGatewayError) {
        let _: PaymentWire.RefundState = try await call(
            "refunds",
            PaymentWire.RefundRequest(orderId: order, refundId: refundID, amountFen: amountFen, notifyUrl: notifyURL))
    }

    func queryRefund(_ refundID: String) async throws(PaymentGatewayError) -> RefundStatus {
        let state: PaymentWire.RefundState = try await call(
            "refunds/query", PaymentWire.RefundReference(refundId: refundID))
        switch (state.status, state.amountFen, state.refundedAt) {
        case ("succeeded", let amount?, let at?): return .succeeded(amountFen: amount, refundedAt: at)
        case ("processing", _, _): return .processing
        case ("failed", _, _): return .failed(state.reason ?? "no reason given")
        default: throw .unavailable("an unreadable refund state `\(state.status)`")
        }
    }

    func notification(body: [UInt8], header: (String) -> String?) throws(PaymentNotificationRejection)
        -> PaymentNotification
    {
        try PaymentWire.readNotification(body: body, header: header, signing: signing)
    }

    static func status(_ state: PaymentWire.OrderState, order: String) throws(PaymentGatewayError) -> PaymentStatus {
        guard state.orderId == order else { throw .unavailable("the answer is about another order") }
        switch (state.status, state.transactionId, state.amountFen, state.paidAt) {
        case ("paid", let transaction?, let amount?, let at?):
            return .paid(transactionID: transaction, amountFen: amount, paidAt: at)
        case ("unpaid", _, _, _): return .unpaid
        case ("closed", _, _, _): return .closed
        case ("unknown", _, _, _): return .unknown
        default: throw .unavailable("an unreadable order state `\(state.status)`")
        }
    }

    /// POSTs `request` to `<baseURL>/<path>`, signed, and reads the signed answer.
    private func call<Answer: Decodable>(_ path: String, _ request: some Encodable) async throws(PaymentGatewayError)
        -> Answer
    {
        let body = Array((try? PaymentWire.encoder.encode(request)) ?? Data())
        let response: CalloutResponse
        do {
            response = try await client.execute(
                CalloutRequest(
                    method: "POST", url: "\(baseURL)/\(path)",
                    headers: [(name: "Content-Type", value: "application/json")] + signing.headers(for: body),
                    body: body, timeout: timeout))
        } catch {
            throw .unavailable("\(error)")
        }
        let reason = String(decoding: response.body.prefix(300), as: UTF8.self)
        if response.status >= 500 { throw .unavailable("HTTP \(response.status): \(reason)") }
        guard (200..<300).contains(response.status) else { throw .refused("HTTP \(response.status): \(reason)") }
        do {
            try signing.verify(
                body: response.body,
                header: { name in response.headers.first { $0.name.lowercased() == name.lowercased() }?.value })
        } catch {
            throw .unavailable("the answer is not authentic: \(error)")
        }
        guard let answer = try? PaymentWire.decoder.decode(Answer.self, from: Data(response.body)) else {
            throw .unavailable("an unreadable answer: \(reason)")
        }
        return answer
    }
}
