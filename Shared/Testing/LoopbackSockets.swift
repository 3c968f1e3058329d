import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A loopback port with nothing listening on it.
public func unusedLoopbackPort() throws -> Int {
    let listener = try SaturatedListener(saturate: false)
    let port = listener.port
    listener.close()
    return port
}

/// A TCP listener that never accepts and whose accept queue is full, so a further connection attempt waits
/// for a handshake that never completes (the kernel drops its SYNs).
public final class SaturatedListener: @unchecked Sendable {
    public let port: Int
    private let descriptor: Int32
    private var fillers: [Int32] = []

    public struct SocketFailure: Error { let call: String }

    public init(saturate: Bool = true) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        guard descriptor >= 0 else { throw SocketFailure(call: "socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(descriptor, 0) == 0 else { throw SocketFailure(call: "bind/listen") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        // A SYN to a full accept queue is dropped, so the filler connections make later ones hang in connect.
        guard saturate else { return }
        for _ in 0..<8 {
            let filler = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            var target = address
            target.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(filler, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            fillers.append(filler)
        }
    }

    public func close() {
        for filler in fillers { Glibc.close(filler) }
        fillers = []
        Glibc.close(descriptor)
    }
}
