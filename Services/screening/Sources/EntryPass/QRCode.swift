/// A QR Code (ISO/IEC 18004:2015, model 2), versions 1–40, all four error-correction levels, one segment in
/// numeric, alphanumeric or byte mode.
///
/// We write our own because no Swift QR package can be had here; the construction follows the standard's order
/// (data bits, Reed–Solomon blocks interleaved, function patterns, zig-zag placement, the mask with the lowest
/// penalty, format and version information) as Project Nayuki's reference generator lays it out. Tests decode
/// what it draws with zbar, an independent decoder, at every version and level.
public struct QRCode: Sendable {
    public enum ErrorCorrection: Int, Sendable, CaseIterable {
        /// About 7 %, 15 %, 25 % and 30 % of the codewords may be lost.
        case low = 0
        case medium, quartile, high

        /// The two format-information bits of the level (they are not in the level's order).
        var formatBits: Int { [1, 0, 3, 2][rawValue] }
    }

    public enum EncodingError: Error, Equatable {
        /// More data than version 40 at the requested level can hold.
        case dataTooLong
    }

    /// 21 + 4 × (version − 1) modules a side.
    public let size: Int
    public let version: Int
    /// The level used: at least the one asked for, higher when the same version has room.
    public let errorCorrection: ErrorCorrection
    public let mask: Int
    private let modules: [Bool]

    /// Whether the module at column `x`, row `y` is dark; outside the symbol (the quiet zone) is light.
    public subscript(x: Int, y: Int) -> Bool {
        guard (0..<size).contains(x), (0..<size).contains(y) else { return false }
        return modules[y * size + x]
    }

    /// The smallest symbol that holds `text` (UTF-8) at `errorCorrection` or better.
    public init(encoding text: String, errorCorrection: ErrorCorrection = .medium) throws(EncodingError) {
        try self.init(encoding: Array(text.utf8), errorCorrection: errorCorrection)
    }

    public init(encoding bytes: [UInt8], errorCorrection minimum: ErrorCorrection = .medium) throws(EncodingError) {
        let segment = Segment(bytes)
        guard
            let version = (1...40).first(where: { version in
                segment.bitLength(version: version) <= Self.dataCodewords(version: version, minimum) * 8
            })
        else { throw .dataTooLong }
        // Spend the room the version leaves on a stronger level.
        let level = ErrorCorrection.allCases.last { level in
            level.rawValue >= minimum.rawValue
                && segment.bitLength(version: version) <= Self.dataCodewords(version: version, level) * 8
        }!
        var builder = Builder(version: version)
        builder.drawFunctionPatterns()
        builder.drawCodewords(Self.codewords(segment, version: version, level: level))
        let candidates = (0..<8).map { mask in builder.masked(mask, level: level) }
        let penalties = candidates.map(\.penalty)
        let mask = penalties.indices.min { penalties[$0] < penalties[$1] }!
        builder = candidates[mask]
        self.version = version
        self.size = builder.size
        self.errorCorrection = level
        self.mask = mask
        self.modules = builder.modules
    }

    // MARK: Data codewords

    /// Mode indicator, character count, data, terminator, padding to whole bytes, then the pad codewords; split
    /// into blocks, each with its Reed–Solomon codewords, interleaved.
    private static func codewords(_ segment: Segment, version: Int, level: ErrorCorrection) -> [UInt8] {
        var bits = BitBuffer()
        bits.append(segment.mode.indicator, count: 4)
        bits.append(segment.count, count: segment.mode.countBits(version: version))
        bits.bits += segment.data.bits
        let capacity = dataCodewords(version: version, level) * 8
        bits.append(0, count: min(4, capacity - bits.bits.count))
        bits.append(0, count: (8 - bits.bits.count % 8) % 8)
        var data = bits.bytes
        var pad: UInt8 = 0xEC
        while data.count * 8 < capacity {
            data.append(pad)
            pad ^= 0xEC ^ 0x11
        }
        return interleaved(data, version: version, level: level)
    }

    private static func interleaved(_ data: [UInt8], version: Int, level: ErrorCorrection) -> [UInt8] {
        let blockCount = errorCorrectionBlocks[level.rawValue][version]
        let eccLength = eccCodewordsPerBlock[level.rawValue][version]
        let rawCodewords = rawDataModules(version: version) / 8
        // The first blocks are one data codeword shorter than the rest.
        let shortBlocks = blockCount - rawCodewords % blockCount
        let shortBlockLength = rawCodewords / blockCount
        let divisor = ReedSolomon.divisor(degree: eccLength)
        var blocks: [[UInt8]] = []
        var offset = 0
        for index in 0..<blockCount {
            let length = shortBlockLength - eccLength + (index < shortBlocks ? 0 : 1)
            var block = Array(data[offset..<offset + length])
            offset += length
            let ecc = ReedSolomon.remainder(of: block, divisor: divisor)
            if index < shortBlocks { block.append(0) }  // a gap, skipped when interleaving
            blocks.append(block + ecc)
        }
        var result: [UInt8] = []
        for column in 0..<blocks[0].count {
            for (index, block) in blocks.enumerated()
            where column != shortBlockLength - eccLength || index >= shortBlocks {
                result.append(block[column])
            }
        }
        return result
    }

    /// Modules left for codewords once the function patterns and format/version information are drawn.
    static func rawDataModules(version: Int) -> Int {
        var result = (16 * version + 128) * version + 64
        if version >= 2 {
            let alignments = version / 7 + 2
            result -= (25 * alignments - 10) * alignments - 55
            if version >= 7 { result -= 36 }
        }
        return result
    }

    static func dataCodewords(version: Int, _ level: ErrorCorrection) -> Int {
        rawDataModules(version: version) / 8 - eccCodewordsPerBlock[level.rawValue][version]
            * errorCorrectionBlocks[level.rawValue][version]
    }

    // ISO/IEC 18004 table 9, by level then version (index 0 unused).
    private static let eccCodewordsPerBlock: [[Int]] = [
        [
            -1, 7, 10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28, 28, 28, 30, 30, 26, 28,
            30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
        ],
        [
            -1, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26, 26, 28, 28, 28, 28, 28,
            28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28,
        ],
        [
            -1, 13, 22, 18, 26, 18, 24, 18, 22, 20, 24, 28, 26, 24, 20, 30, 24, 28, 28, 26, 30, 28, 30, 30, 30, 30, 28,
            30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
        ],
        [
            -1, 17, 28, 22, 16, 22, 28, 26, 26, 24, 28, 24, 28, 22, 24, 24, 30, 28, 28, 26, 28, 30, 24, 30, 30, 30, 30,
            30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
        ],
    ]
    private static let errorCorrectionBlocks: [[Int]] = [
        [
            -1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8, 8, 9, 9, 10, 12, 12, 12, 13, 14, 15, 16, 17,
            18, 19, 19, 20, 21, 22, 24, 25,
        ],
        [
            -1, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21, 23, 25, 26, 28,
            29,
            31, 33, 35, 37, 38, 40, 43, 45, 47, 49,
        ],
        [
            -1, 1, 1, 2, 2, 4, 4, 6, 6, 8, 8, 8, 10, 12, 16, 12, 17, 16, 18, 21, 20, 23, 23, 25, 27, 29, 34, 34, 35, 38,
            40, 43, 45, 48, 51, 53, 56, 59, 62, 65, 68,
        ],
        [
            -1, 1, 1, 2, 4, 4, 4, 5, 6, 8, 8, 11, 11, 16, 16, 18, 16, 19, 21, 25, 25, 25, 34, 30, 32, 35, 37, 40, 42,
            45,
            48, 51, 54, 57, 60, 63, 66, 70, 74, 77, 81,
        ],
    ]
}

// MARK: - Segments

extension QRCode {
    struct Segment {
        enum Mode {
            case numeric, alphanumeric, byte

            var indicator: Int {
                switch self {
                case .numeric: 0x1
                case .alphanumeric: 0x2
                case .byte: 0x4
                }
            }

            /// Bits of the character count, which grow with the version.
            func countBits(version: Int) -> Int {
                let band = version <= 9 ? 0 : version <= 26 ? 1 : 2
                switch self {
                case .numeric: return [10, 12, 14][band]
                case .alphanumeric: return [9, 11, 13][band]
                case .byte: return [8, 16, 16][band]
                }
            }
        }

        static let alphanumericCharset = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".utf8)

        let mode: Mode
        /// Characters (numeric, alphanumeric) or bytes.
        let count: Int
        let data: BitBuffer

        /// The densest mode that can carry all of `bytes`.
        init(_ bytes: [UInt8]) {
            count = bytes.count
            var data = BitBuffer()
            if bytes.allSatisfy({ (0x30...0x39).contains($0) }) {
                mode = .numeric
                for start in stride(from: 0, to: bytes.count, by: 3) {
                    let group = bytes[start..<min(start + 3, bytes.count)]
                    let value = group.reduce(0) { $0 * 10 + Int($1 - 0x30) }
                    data.append(value, count: group.count * 3 + 1)
                }
            } else if bytes.allSatisfy({ Self.alphanumericCharset.contains($0) }) {
                mode = .alphanumeric
                let values = bytes.map { byte in Self.alphanumericCharset.firstIndex(of: byte)! }
                for start in stride(from: 0, to: values.count, by: 2) {
                    if start + 1 < values.count {
                        data.append(values[start] * 45 + values[start + 1], count: 11)
                    } else {
                        data.append(values[start], count: 6)
                    }
                }
            } else {
                mode = .byte
                for byte in bytes { data.append(Int(byte), count: 8) }
            }
            self.data = data
        }

        func bitLength(version: Int) -> Int {
            let countBits = mode.countBits(version: version)
            guard count < 1 << countBits else { return .max }
            return 4 + countBits + data.bits.count
        }
    }

    struct BitBuffer {
        var bits: [Bool] = []

        mutating func append(_ value: Int, count: Int) {
            for shift in stride(from: count - 1, through: 0, by: -1) { bits.append((value >> shift) & 1 == 1) }
        }

        var bytes: [UInt8] {
            stride(from: 0, to: bits.count, by: 8).map { start in
                bits[start..<start + 8].reduce(0) { ($0 << 1) | ($1 ? 1 : 0) }
            }
        }
    }
}

// MARK: - Reed–Solomon over GF(2⁸) with the polynomial x⁸ + x⁴ + x³ + x² + 1

extension QRCode {
    enum ReedSolomon {
        /// The generator polynomial of `degree`, highest coefficient first, its leading 1 left out.
        static func divisor(degree: Int) -> [UInt8] {
            var result = [UInt8](repeating: 0, count: degree - 1) + [1]
            var root: UInt8 = 1
            for _ in 0..<degree {
                for index in result.indices {
                    result[index] = multiply(result[index], root)
                    if index + 1 < result.count { result[index] ^= result[index + 1] }
                }
                root = multiply(root, 0x02)
            }
            return result
        }

        static func remainder(of data: [UInt8], divisor: [UInt8]) -> [UInt8] {
            var result = [UInt8](repeating: 0, count: divisor.count)
            for byte in data {
                let factor = byte ^ result.removeFirst()
                result.append(0)
                for index in result.indices { result[index] ^= multiply(divisor[index], factor) }
            }
            return result
        }

        static func multiply(_ x: UInt8, _ y: UInt8) -> UInt8 {
            var product = 0
            for bit in stride(from: 7, through: 0, by: -1) {
                product = (product << 1) ^ ((product >> 7) * 0x11D)
                product ^= Int((y >> UInt8(bit)) & 1) * Int(x)
            }
            return UInt8(product)
        }
    }
}

// MARK: - Drawing

extension QRCode {
    struct Builder {
        let version: Int
        let size: Int
        var modules: [Bool]
        /// Modules of finder, timing, alignment, format and version patterns: never data, never masked.
        var isFunction: [Bool]

        init(version: Int) {
            self.version = version
            size = version * 4 + 17
            modules = Array(repeating: false, count: size * size)
            isFunction = modules
        }

        mutating func set(_ x: Int, _ y: Int, _ dark: Bool) {
            modules[y * size + x] = dark
            isFunction[y * size + x] = true
        }

        mutating func drawFunctionPatterns() {
            for index in 0..<size {
                set(6, index, index % 2 == 0)
                set(index, 6, index % 2 == 0)
            }
            for (x, y) in [(3, 3), (size - 4, 3), (3, size - 4)] {
                for dy in -4...4 {
                    for dx in -4...4 where (0..<size).contains(x + dx) && (0..<size).contains(y + dy) {
                        let distance = max(abs(dx), abs(dy))
                        set(x + dx, y + dy, distance != 2 && distance != 4)
                    }
                }
            }
            let positions = alignmentPositions
            for (i, column) in positions.enumerated() {
                for (j, row) in positions.enumerated() {
                    // The three corners with finder patterns have none.
                    let last = positions.count - 1
                    if (i == 0 && j == 0) || (i == 0 && j == last) || (i == last && j == 0) { continue }
                    for dy in -2...2 {
                        for dx in -2...2 { set(column + dx, row + dy, max(abs(dx), abs(dy)) != 1) }
                    }
                }
            }
            // Reserve the format areas now; `drawFormat` writes them once the mask is chosen.
            drawFormat(level: .low, mask: 0)
            drawVersion()
        }

        /// Centres of the alignment patterns, the same list for rows and columns.
        var alignmentPositions: [Int] {
            guard version > 1 else { return [] }
            let count = version / 7 + 2
            let step = (version * 8 + count * 3 + 5) / (count * 4 - 4) * 2
            var result: [Int] = []
            var position = size - 7
            for _ in 0..<count - 1 {
                result.insert(position, at: 0)
                position -= step
            }
            return [6] + result
        }

        mutating func drawFormat(level: ErrorCorrection, mask: Int) {
            let data = level.formatBits << 3 | mask
            var remainder = data
            for _ in 0..<10 { remainder = (remainder << 1) ^ ((remainder >> 9) * 0x537) }
            let bits = (data << 10 | remainder) ^ 0x5412
            func bit(_ index: Int) -> Bool { (bits >> index) & 1 == 1 }
            for index in 0...5 { set(8, index, bit(index)) }
            set(8, 7, bit(6))
            set(8, 8, bit(7))
            set(7, 8, bit(8))
            for index in 9..<15 { set(14 - index, 8, bit(index)) }
            for index in 0..<8 { set(size - 1 - index, 8, bit(index)) }
            for index in 8..<15 { set(8, size - 15 + index, bit(index)) }
            set(8, size - 8, true)  // the dark module
        }

        mutating func drawVersion() {
            guard version >= 7 else { return }
            var remainder = version
            for _ in 0..<12 { remainder = (remainder << 1) ^ ((remainder >> 11) * 0x1F25) }
            let bits = version << 12 | remainder
            for index in 0..<18 {
                let dark = (bits >> index) & 1 == 1
                let a = size - 11 + index % 3
                let b = index / 3
                set(a, b, dark)
                set(b, a, dark)
            }
        }

        /// Places the codewords in the zig-zag order: two-module columns from the right, upwards then downwards,
        /// skipping the vertical timing pattern.
        mutating func drawCodewords(_ codewords: [UInt8]) {
            var index = 0
            var right = size - 1
            while right >= 1 {
                if right == 6 { right = 5 }
                for vertical in 0..<size {
                    for offset in 0..<2 {
                        let x = right - offset
                        let upward = (right + 1) & 2 == 0
                        let y = upward ? size - 1 - vertical : vertical
                        guard !isFunction[y * size + x], index < codewords.count * 8 else { continue }
                        modules[y * size + x] = (codewords[index >> 3] >> UInt8(7 - (index & 7))) & 1 == 1
                        index += 1
                    }
                }
                right -= 2
            }
        }

        /// This symbol with data mask `mask` applied and its format information written.
        func masked(_ mask: Int, level: ErrorCorrection) -> Builder {
            var result = self
            for y in 0..<size {
                for x in 0..<size where !isFunction[y * size + x] {
                    let invert =
                        switch mask {
                        case 0: (x + y) % 2 == 0
                        case 1: y % 2 == 0
                        case 2: x % 3 == 0
                        case 3: (x + y) % 3 == 0
                        case 4: (x / 3 + y / 2) % 2 == 0
                        case 5: x * y % 2 + x * y % 3 == 0
                        case 6: (x * y % 2 + x * y % 3) % 2 == 0
                        default: ((x + y) % 2 + x * y % 3) % 2 == 0
                        }
                    if invert { result.modules[y * size + x].toggle() }
                }
            }
            result.drawFormat(level: level, mask: mask)
            return result
        }

        /// The standard's penalty score (§7.8.3): long runs, 2×2 blocks, finder-like patterns, dark/light balance.
        var penalty: Int {
            func dark(_ x: Int, _ y: Int) -> Bool { modules[y * size + x] }
            var score = 0
            for transposed in [false, true] {
                for line in 0..<size {
                    let row = (0..<size).map { index in transposed ? dark(line, index) : dark(index, line) }
                    var run = 1
                    for index in 1...size {
                        if index < size, row[index] == row[index - 1] {
                            run += 1
                        } else {
                            if run >= 5 { score += 3 + run - 5 }
                            run = 1
                        }
                    }
                    // 1:1:3:1:1 with four light modules on either side; outside the symbol counts as light.
                    let padded = [Bool](repeating: false, count: 4) + row + [Bool](repeating: false, count: 4)
                    let finder: [Bool] = [true, false, true, true, true, false, true]
                    let light = [Bool](repeating: false, count: 4)
                    for start in 0...(padded.count - 11) {
                        let window = Array(padded[start..<start + 11])
                        if window == light + finder || window == finder + light { score += 40 }
                    }
                }
            }
            for y in 0..<size - 1 {
                for x in 0..<size - 1 {
                    let colour = dark(x, y)
                    if dark(x + 1, y) == colour, dark(x, y + 1) == colour, dark(x + 1, y + 1) == colour { score += 3 }
                }
            }
            let total = size * size
            let darkCount = modules.count(where: { $0 })
            let deviation = (abs(darkCount * 20 - total * 10) + total - 1) / total - 1
            return score + deviation * 10
        }
    }
}
