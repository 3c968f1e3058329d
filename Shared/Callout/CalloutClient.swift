import CCurl
import Foundation
import Logging

/// The one HTTP client of the code base, over libcurl.
///
/// A dedicated thread drives a libcurl multi handle, so no blocking C call ever runs on Swift's cooperative pool;
/// callers `await` their exchange and are resumed when it completes. The multi handle keeps connections open
/// between exchanges, so a steady stream of calls to one service reuses a small set of TCP connections.
public final class CalloutClient: Sendable {
    private let engine: CurlEngine
    public let configuration: CalloutConfiguration

    public init(configuration: CalloutConfiguration = CalloutConfiguration(), logger: Logger = Logger(label: "callout"))
    {
        _ = CurlGlobal.initialized
        self.configuration = configuration
        self.engine = CurlEngine(configuration: configuration, logger: logger)
    }

    /// Makes one exchange. When `trace` is given, the request carries `X-Request-ID` and a `traceparent` naming a
    /// new child span of it, so the callee's logs join the caller's.
    public func execute(
        _ request: CalloutRequest,
        requestID: String? = nil,
        trace: TraceContext? = nil
    ) async throws(CalloutError) -> CalloutResponse {
        var request = request
        if let requestID {
            request.headers.removeAll { $0.name.lowercased() == "x-request-id" }
            request.headers.append((name: "X-Request-ID", value: requestID))
        }
        if let trace {
            request.headers.removeAll { $0.name.lowercased() == "traceparent" }
            request.headers.append((name: "traceparent", value: trace.child().traceparent))
        }
        let transfer = try Transfer(request: request, configuration: configuration)
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    transfer.continuation = continuation
                    engine.submit(transfer)
                }
            } onCancel: {
                engine.cancel(transfer)
            }
        } catch let error as CalloutError {
            throw error
        } catch {
            throw .transport(url: request.url, reason: "\(error)")
        }
    }

    /// Fails every exchange still in flight with `shutDown` and stops the client's thread.
    public func shutdown() {
        engine.shutdown()
    }
}

/// libcurl's process-wide initialisation, run once before the first handle (it is not thread-safe).
enum CurlGlobal {
    static let initialized: Bool = {
        // CURL_GLOBAL_ALL: SSL and platform sockets.
        curl_global_init(3) == CURLE_OK
    }()
}

/// One exchange in flight. Configured on the caller's thread, then touched only by the engine thread.
final class Transfer: @unchecked Sendable {
    let request: CalloutRequest
    let connectTimeout: Duration
    let timeout: Duration
    let maximumResponseBytes: Int
    var continuation: CheckedContinuation<CalloutResponse, any Error>?
    var easy: UnsafeMutableRawPointer?
    var headerList: UnsafeMutablePointer<curl_slist>?
    let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
    var responseBody: [UInt8] = []
    var responseHeaders: [(name: String, value: String)] = []
    var exceededLimit = false
    /// Set under the engine's lock when the caller gave up before or during the exchange.
    var cancelled = false

    init(request: CalloutRequest, configuration: CalloutConfiguration) throws(CalloutError) {
        guard request.url.hasPrefix("http://") || request.url.hasPrefix("https://") else {
            throw .invalidRequest(reason: "only http and https URLs are supported: \(request.url)")
        }
        guard !request.method.isEmpty, request.method.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            throw .invalidRequest(reason: "invalid method \(request.method)")
        }
        for header in request.headers
        where header.name.contains(where: { $0 == ":" || $0.isNewline })
            || header.value.contains(where: \.isNewline)
        {
            throw .invalidRequest(reason: "invalid header \(header.name)")
        }
        self.request = request
        self.connectTimeout = request.connectTimeout ?? configuration.connectTimeout
        self.timeout = request.timeout ?? configuration.timeout
        self.maximumResponseBytes = configuration.maximumResponseBytes
        errorBuffer.initialize(to: 0)
    }

    deinit {
        if let headerList { curl_slist_free_all(headerList) }
        errorBuffer.deallocate()
    }

    /// Sets every option of this exchange on `easy`.
    func configure(_ easy: UnsafeMutableRawPointer, usesEnvironmentProxy: Bool) {
        self.easy = easy
        let me = Unmanaged.passUnretained(self).toOpaque()
        yz_easy_setopt_string(easy, CURLOPT_URL, request.url)
        yz_easy_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https")
        yz_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        yz_easy_setopt_long(easy, CURLOPT_TCP_NODELAY, 1)
        yz_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1)
        yz_easy_setopt_long(easy, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1))
        yz_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, connectTimeout.wholeMilliseconds)
        yz_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, timeout.wholeMilliseconds)
        yz_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        if !usesEnvironmentProxy {
            yz_easy_setopt_string(easy, CURLOPT_PROXY, "")
        }
        yz_easy_setopt_callback(easy, CURLOPT_WRITEFUNCTION, writeCallback)
        yz_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, me)
        yz_easy_setopt_callback(easy, CURLOPT_HEADERFUNCTION, headerCallback)
        yz_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, me)

        let method = request.method.uppercased()
        switch (method, request.body) {
        case ("GET", nil):
            yz_easy_setopt_long(easy, CURLOPT_HTTPGET, 1)
        case ("HEAD", _):
            yz_easy_setopt_long(easy, CURLOPT_NOBODY, 1)
        case (_, let body?):
            yz_easy_setopt_offset(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
            body.withUnsafeBytes { bytes in
                // COPYPOSTFIELDS: libcurl keeps its own copy, so the Swift array's lifetime does not matter.
                yz_easy_setopt_pointer(
                    easy, CURLOPT_COPYPOSTFIELDS,
                    UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
            }
            yz_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method)
        case ("POST", nil), ("PUT", nil), ("PATCH", nil):
            // An empty body still needs `Content-Length: 0` for these methods.
            yz_easy_setopt_offset(easy, CURLOPT_POSTFIELDSIZE_LARGE, 0)
            yz_easy_setopt_string(easy, CURLOPT_COPYPOSTFIELDS, "")
            yz_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method)
        default:
            yz_easy_setopt_long(easy, CURLOPT_HTTPGET, 1)
            yz_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method)
        }

        var list: UnsafeMutablePointer<curl_slist>? = nil
        for header in request.headers {
            // "Name;" sends a header with an empty value; "Name:" would remove it.
            let line = header.value.isEmpty ? "\(header.name);" : "\(header.name): \(header.value)"
            list = curl_slist_append(list, line)
        }
        // libcurl adds `Expect: 100-continue` to larger bodies, costing a round trip to our own services;
        // an empty value removes it. It would add `Accept: */*` too; callers say what they accept.
        list = curl_slist_append(list, "Expect:")
        if !request.headers.contains(where: { $0.name.lowercased() == "accept" }) {
            list = curl_slist_append(list, "Accept:")
        }
        headerList = list
        yz_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list)
    }

    func appendBody(_ buffer: UnsafeMutablePointer<CChar>, count: Int) -> Int {
        guard responseBody.count + count <= maximumResponseBytes else {
            exceededLimit = true
            return 0  // makes libcurl abort the exchange with CURLE_WRITE_ERROR
        }
        buffer.withMemoryRebound(to: UInt8.self, capacity: count) { bytes in
            responseBody.append(contentsOf: UnsafeBufferPointer(start: bytes, count: count))
        }
        return count
    }

    /// Parses one header line as libcurl hands it over (`Name: value\r\n`), on bytes: this runs for every
    /// header of every response the edge forwards.
    func appendHeaderLine(_ buffer: UnsafeMutablePointer<CChar>, count: Int) {
        buffer.withMemoryRebound(to: UInt8.self, capacity: count) { start in
            let line = UnsafeBufferPointer(start: start, count: count)
            if line.starts(with: Self.statusLinePrefix) {
                // A new status line (after `100 Continue` or an interim response): headers start again.
                responseHeaders.removeAll(keepingCapacity: true)
                return
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else { return }
            var nameEnd = colon
            while nameEnd > 0, Self.isBlank(line[nameEnd - 1]) { nameEnd -= 1 }
            var valueStart = colon + 1
            var valueEnd = line.count
            while valueStart < valueEnd, Self.isBlank(line[valueStart]) { valueStart += 1 }
            while valueEnd > valueStart, Self.isBlank(line[valueEnd - 1]) { valueEnd -= 1 }
            guard nameEnd > 0 else { return }
            let name = String(decoding: UnsafeBufferPointer(rebasing: line[0..<nameEnd]), as: UTF8.self)
            let value = String(decoding: UnsafeBufferPointer(rebasing: line[valueStart..<valueEnd]), as: UTF8.self)
            responseHeaders.append((name: name, value: value))
            // Size the body once instead of growing it chunk by chunk.
            if nameEnd == 14, name.lowercased() == "content-length", let length = Int(value),
                length <= maximumResponseBytes
            {
                responseBody.reserveCapacity(length)
            }
        }
    }

    private static let statusLinePrefix = Array("HTTP/".utf8)

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
            || byte == UInt8(ascii: "\n")
    }

    /// Builds the outcome once libcurl reports the exchange finished with `code`.
    func outcome(code: CURLcode) -> Result<CalloutResponse, CalloutError> {
        guard let easy else { return .failure(.shutDown) }
        let url = request.url
        if code == CURLE_OK {
            var status = 0
            yz_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            var newConnections = 0
            yz_easy_getinfo_long(easy, CURLINFO_NUM_CONNECTS, &newConnections)
            return .success(
                CalloutResponse(
                    status: status,
                    headers: responseHeaders,
                    body: responseBody,
                    reusedConnection: newConnections == 0
                )
            )
        }
        let detail = errorBuffer.pointee != 0 ? String(cString: errorBuffer) : String(cString: curl_easy_strerror(code))
        switch code {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST:
            return .failure(.couldNotConnect(url: url, reason: detail))
        case CURLE_OPERATION_TIMEDOUT:
            var elapsedMicroseconds: curl_off_t = 0
            yz_easy_getinfo_offset(easy, CURLINFO_TOTAL_TIME_T, &elapsedMicroseconds)
            // Only the connect timeout can fire before the total timeout has run out.
            let elapsed = Duration.microseconds(elapsedMicroseconds)
            if connectTimeout < timeout, elapsed < timeout - .milliseconds(5) {
                return .failure(.connectTimedOut(url: url, after: connectTimeout))
            }
            return .failure(.timedOut(url: url, after: timeout))
        case CURLE_WRITE_ERROR where exceededLimit:
            return .failure(.responseTooLarge(url: url, limit: maximumResponseBytes))
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
            return .failure(.invalidRequest(reason: detail))
        default:
            return .failure(.transport(url: url, reason: detail))
        }
    }
}

private let writeCallback: yz_curl_data_callback = { buffer, size, count, userdata in
    guard let buffer, let userdata else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata).takeUnretainedValue()
    return transfer.appendBody(buffer, count: size * count)
}

private let headerCallback: yz_curl_data_callback = { buffer, size, count, userdata in
    guard let buffer, let userdata else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata).takeUnretainedValue()
    transfer.appendHeaderLine(buffer, count: size * count)
    return size * count
}
