import Foundation
import Hummingbird
import Yams

/// Compares a router's routes with the OpenAPI document that describes them.
public enum OpenAPICoverage {
    /// Routes registered on `router` that `document` does not describe, as `METHOD /path` (OpenAPI spelling).
    public static func undocumentedRoutes<Context>(of router: Router<Context>, in document: [UInt8]) throws -> [String]
    {
        let text = String(decoding: document, as: UTF8.self)
        guard let root = try Yams.load(yaml: text) as? [String: Any] else {
            return ["<document is not a YAML mapping>"]
        }
        let paths = root["paths"] as? [String: Any] ?? [:]
        let sharedItems = (root["components"] as? [String: Any])?["pathItems"] as? [String: Any] ?? [:]
        var documented: Set<String> = []
        for (path, item) in paths {
            var operations = item as? [String: Any] ?? [:]
            // A path item may be a reference to `#/components/pathItems/<name>` (OpenAPI 3.1).
            if let reference = operations["$ref"] as? String, reference.hasPrefix("#/components/pathItems/") {
                operations =
                    sharedItems[String(reference.dropFirst("#/components/pathItems/".count))] as? [String: Any] ?? [:]
            }
            for method in operations.keys where method != "parameters" && method != "summary" && method != "description"
            {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        return router.routes
            .map { "\($0.method.rawValue) \(openAPIPath($0.path.description))" }
            .filter { !documented.contains($0) }
            .sorted()
    }

    /// The OpenAPI spelling of a Hummingbird path: `{id}` stays, `**` (the rest of the path) becomes `{path}`.
    static func openAPIPath(_ routerPath: String) -> String {
        let path = routerPath.hasPrefix("/") ? routerPath : "/" + routerPath
        return path.replacingOccurrences(of: "**", with: "{path}")
    }
}
