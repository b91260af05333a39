// Pre-tokenization: splitting text into words before BPE, by hand-written scanners that reproduce
// the regexes of GPT-2 (openai/gpt-2 `encoder.py`), Llama 3 and Qwen2 over Unicode scalars, the
// way llama.cpp's `unicode_regex_split_custom_*` do. Regex engines are avoided on the hot path.
// \p{L} is general category L*, \p{N} is N* (Nd, Nl, No), \s is the White_Space property.

/// The pre-tokenization rule that splits text into words before BPE merges.
///
/// - `gpt2`: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
///   (HF `ByteLevel(use_regex: true)`; llama.cpp `gpt-2`).
/// - `smollm`: every \p{N} scalar is its own word, then `gpt2` on the text between them
///   (HF `Sequence[Digits(individual_digits: true), ByteLevel]`; llama.cpp `smollm`, `starcoder`).
/// - `llama3`: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|`
///   ` ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+` (llama.cpp `llama-bpe`).
/// - `qwen2`: as `llama3` but with single-scalar `\p{N}` (llama.cpp `qwen2`).
public enum PreTokenizerKind: String, Sendable, CaseIterable {
    case gpt2
    case smollm
    case llama3
    case qwen2

    /// Maps a GGUF `tokenizer.ggml.pre` value (llama.cpp's names) to a kind.
    ///
    /// - Throws: `TokenizerError.unsupportedPreTokenizer` naming `ggufName` when no scanner here
    ///   reproduces it.
    public init(ggufName: String) throws(TokenizerError) {
        switch ggufName {
        case "gpt-2", "gpt2": self = .gpt2
        case "smollm", "starcoder", "refact": self = .smollm
        case "llama3", "llama-v3", "llama-bpe": self = .llama3
        case "qwen2", "deepseek-r1-qwen": self = .qwen2
        default:
            throw .unsupportedPreTokenizer(
                name: ggufName,
                supported: ["gpt-2", "smollm", "starcoder", "refact", "llama-bpe", "qwen2"])
        }
    }
}

/// Reusable per-call buffers: the scalars of one text segment, their classes and byte offsets.
struct ScalarBuffer {
    var values: [UInt32] = []
    var classes: [UInt8] = []
    /// Byte offset of each scalar in the text, plus one final entry for the segment end.
    var offsets: [Int] = []
}

/// Scalar classes for the regexes. Exactly one applies to every scalar.
enum ScalarClass {
    static let other: UInt8 = 0
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let whitespace: UInt8 = 3

    static let ascii: [UInt8] = (0..<128).map { classify(Unicode.Scalar(UInt8($0))) }

    @inline(__always)
    static func of(_ value: UInt32) -> UInt8 {
        value < 128 ? ascii[Int(value)] : classify(Unicode.Scalar(value)!)
    }

    static func classify(_ scalar: Unicode.Scalar) -> UInt8 {
        let properties = scalar.properties
        if properties.isWhitespace { return whitespace }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return number
        default:
            return other
        }
    }
}

struct PreTokenizer: Sendable {
    let kind: PreTokenizerKind

    private static let apostrophe: UInt32 = 0x27
    private static let space: UInt32 = 0x20
    private static let carriageReturn: UInt32 = 0x0D
    private static let lineFeed: UInt32 = 0x0A

    /// Splits the valid UTF-8 `text[range]` into words and appends their byte ranges to `words`.
    /// O(n) in the length of the range.
    func split(
        _ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
        buffer: inout ScalarBuffer, into words: inout [Range<Int>]
    ) {
        Self.decode(text, range, into: &buffer)
        let count = buffer.values.count
        switch kind {
        case .gpt2:
            scanGPT2(buffer, 0, count, into: &words)
        case .smollm:
            var start = 0
            for index in 0..<count where buffer.classes[index] == ScalarClass.number {
                if start < index { scanGPT2(buffer, start, index, into: &words) }
                words.append(buffer.offsets[index]..<buffer.offsets[index + 1])
                start = index + 1
            }
            if start < count { scanGPT2(buffer, start, count, into: &words) }
        case .llama3:
            scanLlama3(buffer, 0, count, maxDigits: 3, into: &words)
        case .qwen2:
            scanLlama3(buffer, 0, count, maxDigits: 1, into: &words)
        }
    }

    /// Decodes UTF-8 (known valid: it comes from a Swift `String`) into scalars and classes.
    private static func decode(
        _ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into buffer: inout ScalarBuffer
    ) {
        buffer.values.removeAll(keepingCapacity: true)
        buffer.classes.removeAll(keepingCapacity: true)
        buffer.offsets.removeAll(keepingCapacity: true)
        var index = range.lowerBound
        while index < range.upperBound {
            let lead = UInt32(text[index])
            var value: UInt32
            var length: Int
            if lead < 0x80 {
                value = lead
                length = 1
            } else if lead < 0xE0 {
                value = lead & 0x1F
                length = 2
            } else if lead < 0xF0 {
                value = lead & 0x0F
                length = 3
            } else {
                value = lead & 0x07
                length = 4
            }
            for k in 1..<length {
                value = (value << 6) | (UInt32(text[index + k]) & 0x3F)
            }
            buffer.values.append(value)
            buffer.classes.append(ScalarClass.of(value))
            buffer.offsets.append(index)
            index += length
        }
        buffer.offsets.append(range.upperBound)
    }

    /// Length of a contraction (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`) at `index`, or 0.
    @inline(__always)
    private static func contractionLength(
        _ values: [UInt32], _ index: Int, _ end: Int, caseInsensitive: Bool
    ) -> Int {
        guard values[index] == apostrophe, index + 1 < end else { return 0 }
        // Simple case folding of the seven letters involved: ASCII, plus U+017F LATIN SMALL
        // LETTER LONG S, which folds to "s" (HF's Oniguruma matches it; llama.cpp does not).
        func lower(_ value: UInt32) -> UInt32 {
            guard caseInsensitive else { return value }
            if (0x41...0x5A).contains(value) { return value + 0x20 }
            return value == 0x17F ? 0x73 : value
        }
        let first = lower(values[index + 1])
        switch first {
        case 0x73, 0x74, 0x6D, 0x64: return 2  // s t m d
        case 0x72, 0x76, 0x6C:  // r v l
            guard index + 2 < end else { return 0 }
            let second = lower(values[index + 2])
            let expected: UInt32 = first == 0x6C ? 0x6C : 0x65  // ll, re/ve
            return second == expected ? 3 : 0
        default: return 0
        }
    }

    /// End of the run of scalars of class `cls` starting at `start`.
    @inline(__always)
    private static func runEnd(_ classes: [UInt8], _ start: Int, _ end: Int, _ cls: UInt8) -> Int {
        var index = start
        while index < end && classes[index] == cls { index += 1 }
        return index
    }

    /// End of `\s+(?!\S)|\s+` at `start`, a whitespace scalar: the run minus its last scalar
    /// when a non-space follows, so that scalar can prefix the next word.
    @inline(__always)
    private static func whitespaceEnd(_ classes: [UInt8], _ start: Int, _ end: Int) -> Int {
        let runEnd = runEnd(classes, start, end, ScalarClass.whitespace)
        return runEnd == end || runEnd - 1 == start ? runEnd : runEnd - 1
    }

    private func scanGPT2(
        _ buffer: ScalarBuffer, _ start: Int, _ end: Int, into words: inout [Range<Int>]
    ) {
        let values = buffer.values
        let classes = buffer.classes
        var index = start
        while index < end {
            var wordEnd = index + Self.contractionLength(values, index, end, caseInsensitive: false)
            if wordEnd == index {
                // ` ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+`: optional space, then a run of one class.
                var body = index
                if values[index] == Self.space && index + 1 < end
                    && classes[index + 1] != ScalarClass.whitespace
                {
                    body = index + 1
                }
                let cls = classes[body]
                wordEnd =
                    cls == ScalarClass.whitespace
                    ? Self.whitespaceEnd(classes, index, end)
                    : Self.runEnd(classes, body + 1, end, cls)
            }
            words.append(buffer.offsets[index]..<buffer.offsets[wordEnd])
            index = wordEnd
        }
    }

    private func scanLlama3(
        _ buffer: ScalarBuffer, _ start: Int, _ end: Int, maxDigits: Int,
        into words: inout [Range<Int>]
    ) {
        let values = buffer.values
        let classes = buffer.classes
        var index = start
        while index < end {
            let value = values[index]
            let cls = classes[index]
            let isNewline = value == Self.carriageReturn || value == Self.lineFeed
            let nextClass = index + 1 < end ? classes[index + 1] : UInt8.max
            var wordEnd = index + Self.contractionLength(values, index, end, caseInsensitive: true)
            if wordEnd != index {
                // contraction
            } else if cls == ScalarClass.letter
                || (!isNewline && cls != ScalarClass.number && nextClass == ScalarClass.letter)
            {
                // `[^\r\n\p{L}\p{N}]?\p{L}+`
                let body = cls == ScalarClass.letter ? index : index + 1
                wordEnd = Self.runEnd(classes, body + 1, end, ScalarClass.letter)
            } else if cls == ScalarClass.number {
                // `\p{N}{1,maxDigits}`
                wordEnd = Self.runEnd(classes, index + 1, min(end, index + maxDigits), cls)
            } else if cls == ScalarClass.other
                || (value == Self.space && nextClass == ScalarClass.other)
            {
                // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
                let body = cls == ScalarClass.other ? index : index + 1
                wordEnd = Self.runEnd(classes, body + 1, end, ScalarClass.other)
                while wordEnd < end
                    && (values[wordEnd] == Self.carriageReturn || values[wordEnd] == Self.lineFeed)
                {
                    wordEnd += 1
                }
            } else {
                // `\s*[\r\n]+`: up to and including the run's last newline; else `\s+(?!\S)|\s+`.
                let runEnd = Self.runEnd(classes, index, end, ScalarClass.whitespace)
                var lastNewline = -1
                for k in stride(from: runEnd - 1, through: index, by: -1)
                where values[k] == Self.carriageReturn || values[k] == Self.lineFeed {
                    lastNewline = k
                    break
                }
                wordEnd =
                    lastNewline >= 0 ? lastNewline + 1 : Self.whitespaceEnd(classes, index, end)
            }
            words.append(buffer.offsets[index]..<buffer.offsets[wordEnd])
            index = wordEnd
        }
    }
}
