import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Tells systemd about the process's state over `NOTIFY_SOCKET` (sd_notify's protocol), so a `Type=notify` unit
/// counts as started only once the process listens. Does nothing when not run by systemd.
public enum SystemdNotifier {
    public static func notify(_ state: String, environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard let path = environment["NOTIFY_SOCKET"], !path.isEmpty else { return }
        #if canImport(Glibc)
            let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard descriptor >= 0 else { return }
            defer { close(descriptor) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            var pathBytes = Array(path.utf8)
            // A leading "@" names a socket in the abstract namespace, whose address starts with a NUL byte.
            if pathBytes.first == UInt8(ascii: "@") { pathBytes[0] = 0 }
            let capacity = MemoryLayout.size(ofValue: address.sun_path)
            guard pathBytes.count < capacity else { return }
            withUnsafeMutableBytes(of: &address.sun_path) { buffer in
                buffer.copyBytes(from: pathBytes)
            }
            let length = socklen_t(MemoryLayout<sa_family_t>.size + pathBytes.count)
            let message = Array(state.utf8)
            _ = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                    sendto(descriptor, message, message.count, Int32(MSG_NOSIGNAL), socketAddress, length)
                }
            }
        #endif
    }
}
