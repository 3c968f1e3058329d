import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import YunzhenCallout
import YunzhenIdentity
import YunzhenServiceKit

/// Composition root of the edge, the platform's only public listener.
public func buildApplication(configuration: EdgeConfiguration, logger: Logger) async throws -> some ApplicationProtocol
{
    let client = CalloutClient(
        configuration: CalloutConfiguration(
            connectTimeout: configuration.upstreamConnectTimeout,
            timeout: configuration.upstreamTimeout
        ),
        logger: logger
    )
    let verifier = await TokenVerifier(publicKeys: configuration.verificationKeys)
    let router = buildRouter(configuration: configuration, client: client, verifier: verifier)
    return ServiceApplication.make(
        name: "edge",
        router: router,
        settings: configuration.server,
        services: [CalloutClientCloser(client: client)],
        logger: logger
    )
}

/// The edge's router; tests build it with their own client and upstreams.
public func buildRouter(configuration: EdgeConfiguration, client: CalloutClient, verifier: TokenVerifier)
    -> Router<ServiceRequestContext>
{
    let router = ServiceApplication.makeRouter()
    // Static files are served for what no route matches (the file middleware answers the router's 404).
    router.add(
        middleware: FileMiddleware(
            configuration.publicDirectory.path,
            cacheControl: CacheControl([
                // Pages revalidate on every load so a release reaches phones at once; assets may be cached.
                (MediaType(type: .text, subType: "html"), [.noCache]),
                (MediaType(type: .any), [.public, .maxAge(3600)]),
            ]),
            searchForIndexHtml: true
        )
    )
    OperationsRoutes.add(to: router, openAPIDocument: EdgeAPI.openAPIDocument) { true }
    HealthAggregator(client: client, upstreams: configuration.upstreams, timeout: .seconds(2)).add(to: router)
    EdgeProxy(
        client: client, upstreams: configuration.upstreams, bodyLimit: configuration.bodyLimit, verifier: verifier,
        signInLimiter: SignInRateLimiter(perMinute: configuration.signInPerMinute)
    ).add(to: router)
    return router
}

/// The edge's published HTTP API.
public enum EdgeAPI {
    /// The OpenAPI 3.1 document in `Services/edge/Sources/openapi.yaml`.
    public static let openAPIDocument: [UInt8] = PackageResources.openapi_yaml
}

/// Shuts the callout client down after the HTTP server has drained (services listed with the application stop
/// after the server), so a request still in flight at SIGTERM can finish its upstream exchange.
struct CalloutClientCloser: Service {
    let client: CalloutClient

    func run() async throws {
        try? await gracefulShutdown()
        client.shutdown()
    }
}
