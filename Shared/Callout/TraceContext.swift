import Synchronization

/// W3C Trace Context (`traceparent`) for one request: the trace it belongs to and the span that is this hop.
/// A service keeps the caller's trace id and makes a new span id, so logs of every hop join on `trace_id`.
public struct TraceContext: Sendable, Equatable {
    /// 32 lowercase hex digits, never all zero.
    public let traceID: String
    /// 16 lowercase hex digits: the span of this hop.
    public let spanID: String
    /// 2 hex digits; `01` is sampled.
    public let flags: String

    /// The header value that tells the next hop this span is its parent.
    public var traceparent: String { "00-\(traceID)-\(spanID)-\(flags)" }

    /// A new trace for a request that arrived without one.
    public static func newTrace() -> TraceContext {
        TraceContext(traceID: randomHex(bytes: 16), spanID: randomHex(bytes: 8), flags: "01")
    }

    /// Continues the caller's trace with a new span, or starts a new trace when the header is absent or invalid
    /// (the specification says to ignore a malformed `traceparent`, never to reject the request).
    public static func continuing(traceparent: String?) -> TraceContext {
        guard let traceparent, let parent = parse(traceparent) else { return newTrace() }
        return TraceContext(traceID: parent.traceID, spanID: randomHex(bytes: 8), flags: parent.flags)
    }

    /// A child span of this one, for an outgoing call.
    public func child() -> TraceContext {
        TraceContext(traceID: traceID, spanID: Self.randomHex(bytes: 8), flags: flags)
    }

    static func parse(_ header: String) -> TraceContext? {
        let parts = header.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4,
            parts[0].count == 2, parts[0] != "ff", isLowerHex(parts[0]),
            parts[1].count == 32, isLowerHex(parts[1]), parts[1].contains(where: { $0 != "0" }),
            parts[2].count == 16, isLowerHex(parts[2]), parts[2].contains(where: { $0 != "0" }),
            parts[3].count == 2, isLowerHex(parts[3]),
            // Version 00 has exactly four fields; later versions may append more.
            parts[0] != "00" || parts.count == 4
        else { return nil }
        return TraceContext(traceID: String(parts[1]), spanID: String(parts[2]), flags: String(parts[3]))
    }

    private static func isLowerHex(_ text: Substring) -> Bool {
        text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// `bytes` random bytes as lowercase hex, never all zero.
    static func randomHex(bytes: Int) -> String {
        var digits = [UInt8]()
        digits.reserveCapacity(bytes * 2)
        repeat {
            digits.removeAll(keepingCapacity: true)
            var remaining = bytes
            while remaining > 0 {
                var word = IdentifierRandom.next()
                for _ in 0..<min(8, remaining) {
                    digits.append(hexDigits[Int(word >> 4 & 0xf)])
                    digits.append(hexDigits[Int(word & 0xf)])
                    word >>= 8
                }
                remaining -= 8
            }
        } while digits.allSatisfy { $0 == UInt8(ascii: "0") }
        return String(decoding: digits, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
}

/// Random numbers for trace, span and request ids: xoshiro256** seeded once from the system generator. Ids must
/// be unpredictable enough not to collide, not secret; asking the kernel (`getrandom`) three times per request
/// showed up in the edge's profile.
enum IdentifierRandom {
    private static let state = Mutex<(UInt64, UInt64, UInt64, UInt64)>(
        {
            var system = SystemRandomNumberGenerator()
            return (system.next(), system.next(), system.next(), system.next())
        }()
    )

    static func next() -> UInt64 {
        state.withLock { state in
            let result = rotate(state.1 &* 5, 7) &* 9
            let shifted = state.1 << 17
            state.2 ^= state.0
            state.3 ^= state.1
            state.1 ^= state.2
            state.0 ^= state.3
            state.2 ^= shifted
            state.3 = rotate(state.3, 45)
            return result
        }
    }

    private static func rotate(_ value: UInt64, _ count: UInt64) -> UInt64 {
        (value << count) | (value >> (64 - count))
    }
}
