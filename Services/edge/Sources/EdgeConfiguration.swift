import Foundation
import YunzhenContracts
import YunzhenIdentity
import YunzhenServiceKit

/// Everything the edge reads from the environment at start-up.
public struct EdgeConfiguration: ProcessConfiguration {
    public var server: ServerSettings
    /// Base URL of each service (`YUNZHEN_UPSTREAM_<NAME>`).
    public var upstreams: [ServiceName: String]
    /// Static web clients (`YUNZHEN_EDGE_PUBLIC_DIR`).
    public var publicDirectory: URL
    /// Largest request body forwarded (`YUNZHEN_EDGE_BODY_LIMIT`, bytes).
    public var bodyLimit: Int
    public var upstreamConnectTimeout: Duration
    public var upstreamTimeout: Duration
    /// The public keys that verify access tokens (`YUNZHEN_AUTH_VERIFY_KEYS`, required).
    public var verificationKeys: [VerificationKey]
    /// Sign-in requests (sending a code, signing in) allowed per client address per minute
    /// (`YUNZHEN_EDGE_SIGN_IN_PER_MINUTE`).
    public var signInPerMinute: Int

    public init(environment: EnvironmentReader) throws(ConfigurationError) {
        server = try .read(from: environment, defaultHost: "0.0.0.0", defaultPort: defaultEdgePort)
        var upstreams: [ServiceName: String] = [:]
        for service in ServiceName.allCases {
            upstreams[service] = try environment.baseURL(
                service.upstreamVariable, default: "http://127.0.0.1:\(service.defaultPort)")
        }
        self.upstreams = upstreams
        publicDirectory = try environment.directory(
            "YUNZHEN_EDGE_PUBLIC_DIR",
            default: "Services/edge/Public",
            "the folder of the web clients"
        )
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: publicDirectory.path, isDirectory: &isDirectory),
            isDirectory.boolValue
        else {
            throw ConfigurationError(
                variable: "YUNZHEN_EDGE_PUBLIC_DIR", problem: "\(publicDirectory.path) is not a folder")
        }
        bodyLimit = try environment.integer("YUNZHEN_EDGE_BODY_LIMIT", default: 20 * 1024 * 1024, in: 1024...(1 << 30))
        upstreamConnectTimeout = .milliseconds(
            try environment.integer("YUNZHEN_UPSTREAM_CONNECT_TIMEOUT_MS", default: 2000, in: 1...60_000)
        )
        upstreamTimeout = .milliseconds(
            try environment.integer("YUNZHEN_UPSTREAM_TIMEOUT_MS", default: 30_000, in: 1...600_000))
        verificationKeys = try environment.verificationKeys()
        signInPerMinute = try environment.integer("YUNZHEN_EDGE_SIGN_IN_PER_MINUTE", default: 10, in: 1...10_000)
    }

    public init(
        server: ServerSettings,
        upstreams: [ServiceName: String],
        publicDirectory: URL,
        bodyLimit: Int = 20 * 1024 * 1024,
        upstreamConnectTimeout: Duration = .seconds(2),
        upstreamTimeout: Duration = .seconds(30),
        verificationKeys: [VerificationKey] = [],
        signInPerMinute: Int = 10
    ) {
        self.verificationKeys = verificationKeys
        self.signInPerMinute = signInPerMinute
        self.server = server
        self.upstreams = upstreams
        self.publicDirectory = publicDirectory
        self.bodyLimit = bodyLimit
        self.upstreamConnectTimeout = upstreamConnectTimeout
        self.upstreamTimeout = upstreamTimeout
    }
}
