import Crypto
import Foundation
import GRDB
import HTTPTypes
import Testing
import YunzhenAudit
import YunzhenContracts

@testable import ScreeningService

/// The entry pass from a passed screening to the door: what the patient is shown, what the gate admits and every
/// pass it refuses, on the real router and SQLite.
@Suite struct EntryPassTests {
    static let gatePath = "/gate/checks"

    @Test func aPassedScreeningGivesAPassTheGateAdmitsOnce() async throws {
        try await ScreeningFixture.run { fixture in
            let screening = try await fixture.confirmedAppointment("apt_1", patient: "pat_1", account: "acct_a")
            let patient = try await fixture.headers("acct_a", .patient)
            let gate = try await fixture.headers("staff_gate", .gate)
            #expect(
                try await fixture.send(.get, "/screenings/\(screening)/pass", patient).1["code"] as? String
                    == "screening-not-answered")
            #expect(try await fixture.answer(screening, as: "acct_a", QuestionnaireRulesTests.healthy).0 == .ok)

            let (status, pass) = try await fixture.send(.get, "/screenings/\(screening)/pass", patient)
            #expect(status == .ok && pass["status"] as? String == "valid")
            let token = try #require(pass["token"] as? String)
            let code = try #require(pass["code"] as? String)
            #expect(token.hasPrefix("YZP1.") && code.count == 9 && code.contains("-"))
            // The QR code the patient shows decodes, with an independent reader, to the token the gate checks.
            let qr = try #require((pass["qrCode"] as? String)?.split(separator: ",").last)
            #expect(try Zbar.decode(png: Data(base64Encoded: String(qr))!) == [token])
            let validFrom = try #require(ScreeningFixture.date(pass["validFrom"]))
            let expiresAt = try #require(ScreeningFixture.date(pass["expiresAt"]))
            #expect(expiresAt.timeIntervalSince(validFrom) == 24 * 3600)
            #expect(
                HospitalCalendar.shared.date(of: validFrom)
                    == HospitalCalendar.shared.date(of: ScreeningFixture.visitStart))

            // Before the visit's day the pass is not valid yet.
            fixture.clock.set(validFrom.addingTimeInterval(-60))
            #expect(
                try await fixture.send(.post, Self.gatePath, gate, ["pass": token]).1["code"] as? String
                    == "pass-not-yet-valid")
            fixture.clock.set(ScreeningFixture.visitStart)
            // Only the gate checks passes.
            #expect(try await fixture.send(.post, Self.gatePath, patient, ["pass": token]).0 == .forbidden)
            // Someone else's card with this pass.
            let stranger = try await fixture.send(.post, Self.gatePath, gate, ["pass": token, "patientId": "pat_2"])
            #expect(stranger.0 == .conflict && stranger.1["code"] as? String == "pass-for-another-patient")
            // Changed by one character, or not a pass at all.
            for forged in [Self.flip(token, at: 20), Self.flip(token, at: token.count - 3), "YZP1.HELLO", "hello"] {
                let refused = try await fixture.send(.post, Self.gatePath, gate, ["pass": forged])
                #expect(
                    refused.0 == .unprocessableContent && refused.1["code"] as? String == "invalid-pass", "\(forged)")
            }
            let entered = try await fixture.send(
                .post, Self.gatePath, gate, ["pass": token, "patientId": "pat_1", "gate": "门诊楼东门"])
            #expect(entered.0 == .created && entered.1["patientId"] as? String == "pat_1")
            #expect(entered.1["previousEntries"] as? Int == 0)
            // What the gate keeper sees of the person, screening keeping no names.
            #expect(entered.1["sex"] as? String == "female" && entered.1["birthYear"] as? Int == 1980)
            // Once only, whether scanned or typed (lower case, O for 0 and all).
            let again = try await fixture.send(.post, Self.gatePath, gate, ["pass": token])
            #expect(again.0 == .conflict && again.1["code"] as? String == "pass-already-used")
            let typed = code.lowercased().replacingOccurrences(of: "0", with: "o")
            #expect(
                try await fixture.send(.post, Self.gatePath, gate, ["code": typed]).1["code"] as? String
                    == "pass-already-used")
            #expect(try await fixture.send(.post, Self.gatePath, gate, ["code": "ZZZZ-ZZZZ"]).0 == .notFound)
            let long = try await fixture.send(.post, Self.gatePath, gate, ["code": String(repeating: "A", count: 500)])
            #expect(long.0 == .unprocessableContent && long.1["code"] as? String == "invalid-gate-request")
            #expect(
                try await fixture.send(.post, Self.gatePath, gate, ["code": code, "pass": token]).0
                    == .unprocessableContent)
            let used = try await fixture.send(.get, "/screenings/\(screening)/pass", patient).1
            #expect(used["status"] as? String == "used" && (used["entries"] as? [Any])?.count == 1)
            // The next day it has expired.
            fixture.clock.set(expiresAt)
            #expect(
                try await fixture.send(.post, Self.gatePath, gate, ["pass": token]).1["code"] as? String
                    == "pass-expired")

            // Every check is on record, refusals with their reason, and in the audit trail.
            let results = try await fixture.database.writer.read { db in
                try String.fetchAll(db, sql: "SELECT result FROM gate_check ORDER BY id")
            }
            #expect(results.filter { $0 == "entered" }.count == 1)
            #expect(
                Set(results).isSuperset(of: [
                    "pass-not-yet-valid", "pass-for-another-patient", "invalid-pass",
                    "pass-already-used", "unknown-pass-code", "pass-expired",
                ]))
            let trail: [AuditRecord] = try await fixture.database.writer.read { db in
                try AuditTrail.page(AuditQuery(patientID: "pat_1"), in: db)
            }
            let denied = trail.filter { record in record.resourceType == "gate-check" && record.outcome == "denied" }
                .count
            #expect(denied >= 4)
            // The hospital's figures count the door too.
            let calendar = HospitalCalendar.shared
            let range =
                "from=\(calendar.date(of: validFrom.addingTimeInterval(-60)))&to=\(calendar.date(of: expiresAt))"
            let totals =
                try await fixture.send(
                    .get, "/admin/statistics/screenings?\(range)", try await fixture.headers("staff_admin", .admin)
                ).1["totals"] as? [String: Any]
            #expect(totals?["entered"] as? Int == 1 && totals?["refusedAtGate"] as? Int == results.count - 1)
        }
    }

    @Test func whereConfiguredAPassLetsItsHolderInAgainOnItsDay() async throws {
        try await ScreeningFixture.run(singleEntry: false) { fixture in
            let (_, token) = try await fixture.passedScreening("apt_1", patient: "pat_1", account: "acct_a")
            fixture.clock.set(ScreeningFixture.visitStart)
            let gate = try await fixture.headers("staff_gate", .gate)
            #expect(
                try await fixture.send(.post, Self.gatePath, gate, ["pass": token]).1["previousEntries"] as? Int == 0)
            #expect(
                try await fixture.send(.post, Self.gatePath, gate, ["pass": token]).1["previousEntries"] as? Int == 1)
        }
    }

    @Test func aCancelledAppointmentOrAnAdminRevokesThePass() async throws {
        try await ScreeningFixture.run { fixture in
            let gate = try await fixture.headers("staff_gate", .gate)
            var tokens: [String] = []
            for appointment in ["apt_1", "apt_2"] {
                tokens.append(try await fixture.passedScreening(appointment, patient: "pat_1", account: "acct_a").1)
            }
            try await fixture.deliver(
                AppointmentCancelled(
                    appointment: ScreeningFixture.appointment("apt_1", patient: "pat_1", account: "acct_a"),
                    reason: "patient", note: "", refundFen: 5000))
            fixture.clock.set(ScreeningFixture.visitStart)
            let revoked = try await fixture.send(.post, Self.gatePath, gate, ["pass": tokens[0]])
            #expect(
                revoked.1["code"] as? String == "pass-revoked"
                    && revoked.1["reason"] as? String == "appointment-cancelled")

            let passID = try await fixture.database.writer.read { db in
                try String.fetchOne(
                    db,
                    sql:
                        "SELECT entry_pass.id FROM entry_pass JOIN screening ON screening.id = screening_id WHERE appointment_id = 'apt_2'"
                )!
            }
            #expect(
                try await fixture.send(.post, "/admin/passes/\(passID)/revocation", gate, ["reason": "phone lost"]).0
                    == .forbidden)
            let admin = try await fixture.headers("staff_admin", .admin)
            #expect(
                try await fixture.send(.post, "/admin/passes/\(passID)/revocation", admin, ["reason": " "]).0
                    == .unprocessableContent)
            let byAdmin = try await fixture.send(.post, "/admin/passes/\(passID)/revocation", admin, ["reason": "手机丢失"])
            #expect(byAdmin.0 == .ok && byAdmin.1["status"] as? String == "revoked")
            #expect(
                try await fixture.send(.post, Self.gatePath, gate, ["pass": tokens[1]]).1["code"] as? String
                    == "pass-revoked")
        }
    }

    @Test func aFailedScreeningHasNoPassAndSaysWhereToGo() async throws {
        try await ScreeningFixture.run { fixture in
            let screening = try await fixture.confirmedAppointment("apt_1", patient: "pat_1", account: "acct_a")
            let answered = try await fixture.answer(
                screening, as: "acct_a", QuestionnaireRulesTests.with(["Q8": .choice("yellow")]))
            let result = answered.1["result"] as! [String: Any]
            #expect(result["goTo"] as? String == "发热门诊" && result["goToEn"] as? String == "Fever clinic")
            let pass = try await fixture.send(
                .get, "/screenings/\(screening)/pass", try await fixture.headers("acct_a", .patient))
            #expect(pass.0 == .conflict && pass.1["code"] as? String == "no-entry-pass")
            #expect(pass.1["goTo"] as? String == "发热门诊" && pass.1["outcome"] as? String == "fever-clinic")
            #expect(
                try await fixture.database.writer.read { db in
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM entry_pass")
                } == 0)
        }
    }

    @Test func aScreeningPassedBeforePassesExistedGetsOneWhenAsked() async throws {
        try await ScreeningFixture.run { fixture in
            let (screening, first) = try await fixture.passedScreening("apt_1", patient: "pat_1", account: "acct_a")
            try await fixture.database.writer.write { db in try db.execute(sql: "DELETE FROM entry_pass") }
            let pass = try await fixture.send(
                .get, "/screenings/\(screening)/pass", try await fixture.headers("acct_a", .patient))
            #expect(pass.0 == .ok && pass.1["status"] as? String == "valid")
            #expect((pass.1["token"] as? String).map { $0 != first } == true)
        }
    }

    /// A pass signed with a key that is not screening's (someone who knows the format and a real pass id) is
    /// refused before anything about the pass is trusted.
    @Test func aPassSignedWithAnotherKeyIsRefused() async throws {
        try await ScreeningFixture.run { fixture in
            let (_, genuine) = try await fixture.passedScreening("apt_1", patient: "pat_1", account: "acct_a")
            let secret = try await fixture.database.writer.read { db in
                try Data.fetchOne(db, sql: "SELECT secret FROM pass_key")!
            }
            let fields = try PassToken.verify(genuine) { _ in SymmetricKey(data: secret) }
            let forged = fields.signed(with: SymmetricKey(size: .bits256))
            #expect(forged != genuine)
            fixture.clock.set(ScreeningFixture.visitStart)
            let refused = try await fixture.send(
                .post, Self.gatePath, try await fixture.headers("staff_gate", .gate), ["pass": forged])
            #expect(refused.0 == .unprocessableContent && refused.1["code"] as? String == "invalid-pass")
        }
    }

    static func flip(_ token: String, at offset: Int) -> String {
        var characters = Array(token)
        characters[offset] = characters[offset] == "A" ? "B" : "A"
        return String(characters)
    }
}

/// Pass tokens on their own: what is signed is what is read back, and any change, or another key, is caught.
@Suite struct PassTokenTests {
    static let key = SymmetricKey(size: .bits256)
    static let token = PassToken(
        keyID: [1, 2, 3, 4], passID: Array(0..<10), validFrom: Date(timeIntervalSince1970: 1_800_000_000),
        expiresAt: Date(timeIntervalSince1970: 1_800_086_400), patientID: "pat_0123456789abcdef")

    @Test func aSignedTokenReadsBackAsItWas() throws {
        let text = Self.token.signed(with: Self.key)
        #expect(text.allSatisfy { QRCode.Segment.alphanumericCharset.contains($0.asciiValue ?? 0) })
        #expect(try PassToken.verify(text) { $0 == [1, 2, 3, 4] ? Self.key : nil } == Self.token)
    }

    @Test func everyChangedCharacterAndAnotherKeyAreCaught() throws {
        let text = Self.token.signed(with: Self.key)
        for offset in PassToken.prefix.count..<text.count {
            var characters = Array(text)
            characters[offset] = characters[offset] == "Q" ? "R" : "Q"
            #expect(throws: PassToken.Invalid.self) {
                try PassToken.verify(String(characters)) { _ in Self.key }
            }
        }
        #expect(throws: PassToken.Invalid.badSignature) {
            try PassToken.verify(text) { _ in SymmetricKey(size: .bits256) }
        }
        #expect(throws: PassToken.Invalid.unknownKey) { try PassToken.verify(text) { _ in nil } }
        #expect(throws: PassToken.Invalid.malformed) { try PassToken.verify("YZP1.0000") { _ in Self.key } }
    }
}

/// zbarimg (Debian's zbar-tools), an independent QR reader: what it decodes from an image.
enum Zbar {
    static func decode(png: Data) throws -> [String] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("yunzhen-qr-\(UUID().uuidString).png")
        try png.write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        return try decode(files: [file])
    }

    /// The texts of the symbols in `files`, one line each (zbarimg's `--raw` output, in file order).
    static func decode(files: [URL]) throws -> [String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/zbarimg")
        guard FileManager.default.isExecutableFile(atPath: process.executableURL!.path) else {
            throw ZbarMissing()
        }
        process.arguments = ["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"] + files.map(\.path)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .dropLast().map(String.init)
    }

    struct ZbarMissing: Error, CustomStringConvertible {
        var description: String { "zbarimg is not installed: `apt-get install zbar-tools` (make test does)" }
    }
}
