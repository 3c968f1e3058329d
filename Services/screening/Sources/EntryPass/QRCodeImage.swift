import Foundation

extension QRCode {
    /// The symbol as a black-on-white PNG: `scale` pixels a module, with the four-module quiet zone the standard
    /// asks for. One bit a pixel, so even version 40 at 4 pixels a module stays under 60 KiB uncompressed, which
    /// is why the image data goes into stored (uncompressed) deflate blocks and no compressor is needed.
    public func png(scale: Int = 8, quietZone: Int = 4) -> [UInt8] {
        let side = (size + 2 * quietZone) * scale
        let rowBytes = (side + 7) / 8
        var raw: [UInt8] = []
        raw.reserveCapacity((rowBytes + 1) * side)
        for pixelY in 0..<side {
            raw.append(0)  // filter: none
            var row = [UInt8](repeating: 0, count: rowBytes)
            for pixelX in 0..<side where !self[pixelX / scale - quietZone, pixelY / scale - quietZone] {
                row[pixelX / 8] |= 0x80 >> UInt8(pixelX % 8)  // 1 is white in a 1-bit greyscale image
            }
            raw += row
        }
        var header: [UInt8] = []
        header.appendBigEndian(UInt32(side))
        header.appendBigEndian(UInt32(side))
        header += [1, 0, 0, 0, 0]  // bit depth 1, greyscale, deflate, adaptive filtering, no interlace
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        png.appendChunk("IHDR", header)
        png.appendChunk("IDAT", PNGZlib.stored(raw))
        png.appendChunk("IEND", [])
        return png
    }
}

/// A zlib stream (RFC 1950) of stored deflate blocks (RFC 1951 §3.2.4), and the checksums PNG and zlib need.
enum PNGZlib {
    static func stored(_ data: [UInt8]) -> [UInt8] {
        var result: [UInt8] = [0x78, 0x01]  // deflate, 32 KiB window, no dictionary, fastest
        var offset = 0
        repeat {
            let length = min(65_535, data.count - offset)
            let final: UInt8 = offset + length == data.count ? 1 : 0
            result.append(final)
            result += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
            result += data[offset..<offset + length]
            offset += length
        } while offset < data.count
        result.appendBigEndian(adler32(data))
        return result
    }

    static func adler32(_ data: [UInt8]) -> UInt32 {
        var a: UInt32 = 1
        var b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65_521
            b = (b + a) % 65_521
        }
        return b << 16 | a
    }

    static let crcTable: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }

    /// CRC-32 (ISO 3309), as PNG chunks carry it.
    static func crc32(_ data: [UInt8]) -> UInt32 {
        ~data.reduce(~UInt32(0)) { crc, byte in crcTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
    }
}

extension [UInt8] {
    fileprivate mutating func appendBigEndian(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { append(UInt8((value >> UInt32(shift)) & 0xFF)) }
    }

    fileprivate mutating func appendChunk(_ type: String, _ data: [UInt8]) {
        appendBigEndian(UInt32(data.count))
        let typed = Array(type.utf8) + data
        self += typed
        appendBigEndian(PNGZlib.crc32(typed))
    }
}
