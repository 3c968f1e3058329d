import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Pictures staff upload (doctors' photos, articles' covers): only PNG and JPEG, recognised by their bytes, not by
/// what the client claims, since an SVG or HTML "picture" could carry script; served back with headers that keep a
/// browser from reading them as anything else.
public enum UploadedImage {
    /// `image/png` or `image/jpeg`, or nil when the bytes are neither.
    public static func contentType(of bytes: Data) -> String? {
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "image/png" }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        return nil
    }

    /// The content type of an upload of at most `limit` bytes, or the problem that says what to send instead.
    public static func check(_ bytes: Data, limit: Int, what: String) throws -> String {
        guard bytes.count <= limit else {
            throw Problem(
                .contentTooLarge, code: "\(what)-too-large", detail: "A \(what) must be at most \(limit / 1024) KiB.")
        }
        guard let type = contentType(of: bytes) else {
            throw Problem(
                .unsupportedMediaType, code: "unsupported-\(what)", detail: "A \(what) must be a PNG or a JPEG image.")
        }
        return type
    }

    public static func response(_ bytes: Data, contentType: String) -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: contentType, .cacheControl: "public, max-age=3600",
                .contentSecurityPolicy: "default-src 'none'", HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            ],
            body: .init(byteBuffer: ByteBuffer(data: bytes)))
    }
}
