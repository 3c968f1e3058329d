/// CRC-32C (Castagnoli), the checksum of every queue record: the one Kafka, ext4 and iSCSI use, chosen for its
/// better error detection than CRC-32 on the short records we write. Slicing-by-8 in software.
public enum CRC32C {
    /// The checksum of `bytes`, continuing from `crc` (the checksum of what came before).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        var crc = ~crc
        var index = 0
        let count = bytes.count
        let table = Self.table
        table.withUnsafeBufferPointer { table in
            while count - index >= 8 {
                let low =
                    UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2]) << 16
                    | UInt32(bytes[index + 3]) << 24
                let high =
                    UInt32(bytes[index + 4]) | UInt32(bytes[index + 5]) << 8
                    | UInt32(bytes[index + 6]) << 16 | UInt32(bytes[index + 7]) << 24
                let mixed = crc ^ low
                crc =
                    table[7 * 256 + Int(mixed & 0xff)] ^ table[6 * 256 + Int(mixed >> 8 & 0xff)]
                    ^ table[5 * 256 + Int(mixed >> 16 & 0xff)] ^ table[4 * 256 + Int(mixed >> 24)]
                    ^ table[3 * 256 + Int(high & 0xff)] ^ table[2 * 256 + Int(high >> 8 & 0xff)]
                    ^ table[1 * 256 + Int(high >> 16 & 0xff)] ^ table[Int(high >> 24)]
                index += 8
            }
            while index < count {
                crc = table[Int((crc ^ UInt32(bytes[index])) & 0xff)] ^ (crc >> 8)
                index += 1
            }
        }
        return ~crc
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    /// Eight 256-entry tables: table k gives the CRC of a byte followed by k zero bytes.
    private static let table: [UInt32] = {
        let polynomial: UInt32 = 0x82F6_3B78  // Castagnoli, reflected
        var table = [UInt32](repeating: 0, count: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ polynomial : crc >> 1 }
            table[byte] = crc
        }
        for byte in 0..<256 {
            var crc = table[byte]
            for slice in 1..<8 {
                crc = table[Int(crc & 0xff)] ^ (crc >> 8)
                table[slice * 256 + byte] = crc
            }
        }
        return table
    }()
}
