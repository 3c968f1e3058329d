import Foundation

/// The limits of sign-in by SMS code. A code is 6 digits, lives 5 minutes and allows 5 tries; a number may ask
/// again after a minute, at most 5 times an hour and 10 a day; one client address at most 30 times an hour (one
/// hospital's Wi-Fi may carry many patients, so not lower).
struct SignInPolicy: Sendable {
    var codeLifetime: TimeInterval = 5 * 60
    var attemptsPerCode = 5
    var resendAfter: TimeInterval = 60
    var codesPerNumberPerHour = 5
    var codesPerNumberPerDay = 10
    var codesPerAddressPerHour = 30
    /// How long a session lasts without being used: each refresh starts a new one of this length.
    var refreshTokenLifetime: TimeInterval = 30 * 24 * 3600
}
