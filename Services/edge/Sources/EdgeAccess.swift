import Foundation
import HTTPTypes
import Synchronization
import YunzhenContracts

/// Which public requests need a signed-in caller. Everything does, except an explicit list: signing in, the
/// public catalogue, the payment provider's notifications, the 科普 articles, and the API documents. Unknown means protected, so a new route is never public by accident.
/// The edge checks the token before proxying (a request without one costs a service nothing); each service checks
/// it again, since a process on the host can reach a service directly.
enum EdgeAccess: Equatable {
    /// No token needed.
    case open
    /// No token needed, but limited per client address: the sign-in endpoints, which text messages and guess codes.
    case signIn
    /// A valid access token needed.
    case signedIn

    static func of(_ target: ProxyRules.Target, method: HTTPRequest.Method) -> EdgeAccess {
        let path = target.pathAndQuery.prefix { $0 != "?" }
        let segments = path.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        if segments == ["openapi.yaml"] { return .open }
        switch target.service {
        case .registration:
            switch segments {
            case ["auth", "sms-codes"], ["auth", "sign-in"], ["auth", "staff", "sign-in"],
                ["auth", "integrator", "token"]:
                return method == .post ? .signIn : .open
            case ["auth", "refresh"], ["auth", "sign-out"]: return .open
            // Reading the catalogue (departments, doctors and their photos, sessions) is public; writing it is not.
            case ["departments"], ["doctors"], ["sessions"],
                _ where segments.count == 2 && ["departments", "doctors", "sessions"].contains(segments[0]),
                _ where segments.count == 3 && segments[0] == "doctors" && segments[2] == "photo":
                return method == .get || method == .head ? .open : .signedIn
            // FHIR views of sessions and their places hold no patient data.
            case _ where segments.count >= 2 && segments[0] == "fhir" && ["Schedule", "Slot"].contains(segments[1]):
                return method == .get || method == .head ? .open : .signedIn
            // The payment provider calls with its own signature, which registration checks.
            case ["payments", "notify"]: return method == .post ? .open : .signedIn
            // The sandbox provider's cashier page, opened by the patient's browser (development only: registration
            // has no such route in production).
            case _ where segments.count == 3 && segments[0] == "sandbox-pay" && segments[1] == "pay": return .open
            default: return .signedIn
            }
        case .screening:
            // 科普 articles are for everyone, signed in or not; writing them is not.
            if segments.first == "articles", segments.count <= 3, method == .get || method == .head { return .open }
            return .signedIn
        case .reports, .consult, .followup:
            return .signedIn
        }
    }
}

/// A token bucket per client address for the sign-in endpoints: `perMinute` requests a minute, in bursts of as
/// many. Memory stays bounded: buckets that are full again are dropped when the table grows large.
final class SignInRateLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    let perMinute: Int
    private let buckets = Mutex<[String: Bucket]>([:])
    private static let pruneAbove = 10_000

    init(perMinute: Int) {
        self.perMinute = perMinute
    }

    /// Takes one request's token for `address`; returns the seconds to wait when there is none.
    func take(for address: String, now: ContinuousClock.Instant = .now) -> Int? {
        let capacity = Double(perMinute)
        let perSecond = capacity / 60
        return buckets.withLock { buckets in
            if buckets.count > Self.pruneAbove {
                buckets = buckets.filter { _, bucket in
                    bucket.tokens + Double((now - bucket.updated).components.seconds) * perSecond < capacity
                }
            }
            var bucket = buckets[address] ?? Bucket(tokens: capacity, updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(capacity, bucket.tokens + seconds * perSecond)
            bucket.updated = now
            defer { buckets[address] = bucket }
            guard bucket.tokens >= 1 else { return Int(((1 - bucket.tokens) / perSecond).rounded(.up)) }
            bucket.tokens -= 1
            return nil
        }
    }
}
