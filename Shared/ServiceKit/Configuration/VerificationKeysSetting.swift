import YunzhenIdentity

extension EnvironmentReader {
    /// `YUNZHEN_AUTH_VERIFY_KEYS`: the public keys that verify access tokens, `<kid>:<base64>[,…]`. Required by the
    /// edge and every service but registration (which verifies with its own signing key).
    public func verificationKeys() throws(ConfigurationError) -> [VerificationKey] {
        let text = try requiredString(
            "YUNZHEN_AUTH_VERIFY_KEYS", "the public keys that verify access tokens, <kid>:<base64>[,…]")
        do {
            return try VerificationKey.list(configuration: text)
        } catch {
            throw ConfigurationError(variable: "YUNZHEN_AUTH_VERIFY_KEYS", problem: "\(error)")
        }
    }
}
