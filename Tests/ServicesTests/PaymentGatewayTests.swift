import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
import YunzhenCallout

@testable import RegistrationService

/// The production payment adapter against a provider on a real socket: signed requests, signed answers, and each
/// way a provider fails; and the notifications it accepts.
@Suite struct PaymentGatewayTests {
    static let secret = String(repeating: "p", count: 40)
    static let signing = MessageSigning(keyID: "hospital-pay", secret: secret)

    @Test func ordersAreSignedBothWaysAndFailuresClassified() async throws {
        let router = Router()
        router.post("/v1/orders") { request, _ -> Response in
            let body = Array(buffer: try await request.body.collect(upTo: 64 * 1024))
            guard (try? Self.signing.verify(body: body, header: { request.headers[HTTPField.Name($0)!] })) != nil
            else {
                return Response(status: .unauthorized, body: .init(byteBuffer: ByteBuffer(string: "bad signature")))
            }
            let order = try PaymentWire.decoder.decode(PaymentWire.OrderRequest.self, from: Data(body))
            #expect(order.notifyUrl == "https://hospital.example/api/registration/payments/notify")
            let answer = Array(
                try PaymentWire.encoder.encode(
                    PaymentWire.OrderCreated(orderId: order.orderId, payUrl: "https://pay/1")))
            var headers: HTTPFields = [.contentType: "application/json"]
            let signer =
                order.amountFen == 4
                ? MessageSigning(keyID: "hospital-pay", secret: "forged-forged-forged-forged-forged!!") : Self.signing
            for (name, value) in signer.headers(for: answer) { headers[HTTPField.Name(name)!] = value }
            switch order.amountFen {
            case 1: return Response(status: .badRequest, body: .init(byteBuffer: ByteBuffer(string: "risk control")))
            case 2: return Response(status: .serviceUnavailable)
            case 3:
                try await Task.sleep(for: .seconds(2))
                return Response(status: .ok)
            default: return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: answer)))
            }
        }
        try await Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
            .test(.live) { client in
                let callout = CalloutClient()
                defer { callout.shutdown() }
                func gateway(_ signing: MessageSigning = Self.signing) -> HTTPPaymentGateway {
                    HTTPPaymentGateway(
                        client: callout, baseURL: "http://127.0.0.1:\(client.port!)/v1",
                        notifyURL: "https://hospital.example/api/registration/payments/notify", signing: signing,
                        timeout: .milliseconds(500))
                }
                func order(_ amount: Int) -> PaymentOrder {
                    PaymentOrder(orderId: "ord_1", amountFen: amount, description: "挂号费", expiresAt: Date())
                }
                let parameters = try await gateway().createOrder(order(5000))
                #expect(parameters.payUrl == "https://pay/1" && parameters.amountFen == 5000)
                await #expect(throws: PaymentGatewayError.refused("HTTP 400: risk control")) {
                    try await gateway().createOrder(order(1))
                }
                await #expect(throws: PaymentGatewayError.self) { try await gateway().createOrder(order(2)) }
                await #expect(throws: PaymentGatewayError.self) { try await gateway().createOrder(order(3)) }
                // An answer the provider did not sign is no answer.
                do {
                    _ = try await gateway().createOrder(order(4))
                    Issue.record("a forged answer was accepted")
                } catch {
                    #expect("\(error)".contains("not authentic"))
                }
                await #expect(throws: PaymentGatewayError.refused("HTTP 401: bad signature")) {
                    try await gateway(MessageSigning(keyID: "hospital-pay", secret: String(repeating: "x", count: 40)))
                        .createOrder(order(5000))
                }
            }
    }

    @Test func notificationsAreAcceptedOnlySignedAndFresh() throws {
        let gateway = HTTPPaymentGateway(
            client: CalloutClient(), baseURL: "http://127.0.0.1:9", notifyURL: "http://127.0.0.1:9",
            signing: Self.signing, timeout: .seconds(1))
        let body = Array(
            try PaymentWire.encoder.encode(
                PaymentWire.Notification(
                    event: "payment.succeeded", orderId: "ord_1", transactionId: "wx1", refundId: nil, amountFen: 5000,
                    at: Date(timeIntervalSince1970: 1_800_000_000))))
        func headers(_ signing: MessageSigning, at date: Date = Date()) -> (String) -> String? {
            let signed = signing.headers(for: body, now: date)
            return { name in signed.first { $0.name.lowercased() == name.lowercased() }?.value }
        }
        #expect(
            try gateway.notification(body: body, header: headers(Self.signing))
                == .paid(
                    orderID: "ord_1", transactionID: "wx1", amountFen: 5000,
                    paidAt: Date(timeIntervalSince1970: 1_800_000_000)))
        #expect(throws: PaymentNotificationRejection.signature(.badSignature)) {
            try gateway.notification(
                body: body,
                header: headers(MessageSigning(keyID: "hospital-pay", secret: String(repeating: "y", count: 40))))
        }
        #expect(throws: PaymentNotificationRejection.signature(.stale)) {
            try gateway.notification(body: body, header: headers(Self.signing, at: Date().addingTimeInterval(-600)))
        }
        #expect(throws: PaymentNotificationRejection.signature(.wrongKey)) {
            try gateway.notification(
                body: body, header: headers(MessageSigning(keyID: "other", secret: Self.secret)))
        }
        var tampered = body
        tampered[tampered.count - 3] ^= 1
        #expect(throws: PaymentNotificationRejection.signature(.badSignature)) {
            try gateway.notification(body: tampered, header: headers(Self.signing))
        }
    }
}
