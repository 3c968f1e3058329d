import Testing
import YunzhenQueue

@Suite struct CRC32CTests {
    @Test func matchesTheStandardCheckValues() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
        // RFC 3720 (iSCSI) B.4 test vectors.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
    }

    @Test func continuingOverPiecesEqualsTheWhole() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let whole = CRC32C.checksum(bytes)
        let pieces = bytes.withUnsafeBytes { all in
            CRC32C.checksum(
                UnsafeRawBufferPointer(rebasing: all[333...]),
                continuing: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: all[..<333])))
        }
        #expect(pieces == whole)
    }
}
