import Foundation
import Testing

@testable import ScreeningService

/// Our QR encoder against an independent decoder (zbar) and the standard's worked example.
@Suite struct QRCodeTests {
    /// Text that fills `version` at `level` in byte mode (lower-case letters are not alphanumeric).
    static func filling(version: Int, _ level: QRCode.ErrorCorrection) -> String {
        let capacity = QRCode.dataCodewords(version: version, level) - (version <= 9 ? 2 : 3)
        return String((0..<capacity).map { Character(UnicodeScalar(UInt8(97 + ($0 * 7) % 26))) })
    }

    /// Versions that cover each band of character-count lengths, the first with alignment patterns, the first
    /// with version information, the last; each at every level, filled to the brim so each table entry counts.
    @Test func zbarReadsWhatWeDrawAtEveryLevelAcrossTheVersions() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("yunzhen-qr-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var files: [URL] = []
        var texts: [String] = []
        for level in QRCode.ErrorCorrection.allCases {
            for version in [1, 2, 6, 7, 9, 10, 13, 26, 27, 40] {
                let text = Self.filling(version: version, level)
                let code = try QRCode(encoding: text, errorCorrection: level)
                #expect(code.version == version && code.errorCorrection == level, "\(version) \(level)")
                #expect(code.size == 17 + 4 * version)
                let file = directory.appendingPathComponent("\(level.rawValue)-\(version).png")
                try Data(code.png(scale: 2)).write(to: file)
                files.append(file)
                texts.append(text)
            }
        }
        #expect(try Zbar.decode(files: files) == texts)
    }

    @Test func digitsAndUpperCaseUseTheDenserModes() throws {
        // 41 digits fill version 1 at L in numeric mode; in byte mode they would need version 3.
        let digits = String(repeating: "7", count: 41)
        #expect(try QRCode(encoding: digits, errorCorrection: .low).version == 1)
        let alphanumeric = "YZP1.ABCDEFGHIJKLMNOPQRSTUVWXYZ234567:$%*+-/ "
        let code = try QRCode(encoding: alphanumeric, errorCorrection: .medium)
        #expect(code.version == 3)
        #expect(try Zbar.decode(png: Data(code.png())) == [alphanumeric])
        #expect(try Zbar.decode(png: Data(try QRCode(encoding: digits).png())) == [digits])
    }

    @Test func moreThanVersion40HoldsIsRefused() {
        #expect(throws: QRCode.EncodingError.dataTooLong) {
            try QRCode(encoding: String(repeating: "a", count: 2_954), errorCorrection: .low)
        }
        #expect(throws: Never.self) {
            try QRCode(encoding: String(repeating: "a", count: 2_953), errorCorrection: .low)
        }
    }

    /// The standard's worked example (ISO/IEC 18004 annex I): "01234567" at 1-M has these ten error-correction
    /// codewords.
    @Test func reedSolomonMatchesTheStandardsExample() {
        let data: [UInt8] = [
            0x10, 0x20, 0x0C, 0x56, 0x61, 0x80, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11,
        ]
        let ecc = QRCode.ReedSolomon.remainder(of: data, divisor: QRCode.ReedSolomon.divisor(degree: 10))
        #expect(ecc == [0xA5, 0x24, 0xD4, 0xC1, 0xED, 0x36, 0xC7, 0x87, 0x2C, 0x55])
    }
}
