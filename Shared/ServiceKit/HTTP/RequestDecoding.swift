import Foundation
import Hummingbird

extension Request {
    /// Decodes a JSON body of at most the context's upload size. Unlike Hummingbird's `decode(as:context:)`,
    /// it lets the `DecodingError` through, so `ProblemMiddleware` can say which field is wrong in plain words.
    public func decodeJSON<Value: Decodable>(as type: Value.Type, context: ServiceRequestContext) async throws -> Value
    {
        try await JSONDecoder().decode(type, from: self, context: context)
    }
}
