// Byte-level alphabet of GPT-2 (`bytes_to_unicode` in openai/gpt-2 `encoder.py`, `ByteLevel` in
// HF `tokenizers`): every byte maps to one printable Unicode scalar, so a BPE vocabulary over
// bytes can be stored as ordinary strings. Printable Latin-1 bytes map to themselves; the 68
// others (controls, space, 0x7F-0xA0, 0xAD) map to U+0100... in byte order, which is why a space
// shows up as "Ġ".

enum ByteLevel {
    /// `scalarForByte[b]` is the scalar value that stands for byte `b` in token strings.
    static let scalarForByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if isPrintable(UInt8(byte)) {
                table[byte] = UInt32(byte)
            } else {
                table[byte] = next
                next += 1
            }
        }
        return table
    }()

    /// Inverse of `scalarForByte` over U+0000...U+01FF; -1 where a scalar stands for no byte.
    static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 512)
        for (byte, scalar) in scalarForByte.enumerated() {
            table[Int(scalar)] = Int16(byte)
        }
        return table
    }()

    private static func isPrintable(_ byte: UInt8) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }

    /// The byte-level token string for raw bytes, e.g. `[0x20, 0x61]` → "Ġa".
    static func encode<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        var scalars = String.UnicodeScalarView()
        for byte in bytes {
            scalars.append(Unicode.Scalar(scalarForByte[Int(byte)])!)
        }
        return String(scalars)
    }

    /// The raw bytes of a byte-level token string, or nil if some scalar is outside the alphabet
    /// (added tokens such as "<|im_start|>" are plain text and pass through unchanged).
    static func decode(_ token: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.unicodeScalars.count)
        for scalar in token.unicodeScalars {
            guard scalar.value < 512 else { return nil }
            let byte = byteForScalar[Int(scalar.value)]
            guard byte >= 0 else { return nil }
            bytes.append(UInt8(byte))
        }
        return bytes
    }
}
