/// Why a queue operation failed, in words an operator can act on.
public enum QueueError: Error, Equatable, CustomStringConvertible {
    /// Another process holds the topic's writer lock: a topic has exactly one producer.
    case topicLocked(topic: String, path: String)
    /// The disk is full (or the quota reached): nothing was acknowledged; retry when space returns.
    case diskFull(path: String)
    /// Any other failed system call.
    case io(path: String, operation: String, errno: Int32)
    /// A record larger than a segment can hold.
    case recordTooLarge(bytes: Int, limit: Int)
    /// The writer was closed.
    case closed

    public var description: String {
        switch self {
        case .topicLocked(let topic, let path):
            "topic \(topic) already has a writer (lock \(path) is held by another process)"
        case .diskFull(let path): "no space left on the device holding \(path); nothing was acknowledged"
        case .io(let path, let operation, let code):
            "\(operation) failed on \(path): \(String(cString: strerror(code)))"
        case .recordTooLarge(let bytes, let limit): "a record of \(bytes) bytes exceeds the limit of \(limit) bytes"
        case .closed: "the topic writer is closed"
        }
    }

    static func fromErrno(_ code: Int32, path: String, operation: String) -> QueueError {
        code == ENOSPC || code == EDQUOT ? .diskFull(path: path) : .io(path: path, operation: operation, errno: code)
    }
}

#if canImport(Glibc)
    import Glibc
#endif
