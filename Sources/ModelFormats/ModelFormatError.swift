// Errors for every reader and writer in ModelFormats (safetensors, GGUF). Each case carries
// the file, the field or tensor at fault and what was expected, and `description` renders them
// into one sentence with a hint, in the style of swift-argument-parser's `ValidationError`.
// Readers never trap on hostile input: every length, offset and count read from a file is
// checked against the file size before it is used or allocated.
import Foundation

/// A problem with a model file (safetensors or GGUF), or with values handed to a writer.
public enum ModelFormatError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be opened or mapped (missing, a directory, no permission).
    case cannotOpen(file: URL, reason: String)
    /// `field` needs `needed` bytes at its position but only `available` remain in the file.
    case truncated(file: URL, field: String, needed: Int, available: Int)
    /// `field` holds `found` where the format requires `expected`.
    case malformed(file: URL, field: String, expected: String, found: String)
    /// A tensor's element type (safetensors dtype string or ggml type number) is not known.
    case unknownType(file: URL, tensor: String, type: String)
    /// A tensor's element type is known but cannot be converted to `Float` by this reader.
    case unsupportedConversion(file: URL, tensor: String, type: String)
    /// The format version is not one this reader understands.
    case unsupportedVersion(file: URL, found: Int, supported: ClosedRange<Int>)
    /// No tensor (or metadata key) of that name exists in the file.
    case missingTensor(file: URL, name: String)
    /// The caller's buffer holds `found` elements but the tensor (or row range) has `expected`.
    case countMismatch(file: URL, tensor: String, expected: Int, found: Int)
    /// A writer was given inconsistent input (shape vs. value count, duplicate names, …).
    case invalidInput(file: URL, field: String, expected: String, found: String)
    /// The built-in default model is not in the cache at `expected`.
    case missingDefaultModel(expected: URL)
    /// A system call failed while writing `file`; the previous file (if any) is untouched.
    case writeFailed(file: URL, operation: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let file, let reason):
            "\(file.path): cannot open (\(reason)). Hint: check the path and permissions."
        case .truncated(let file, let field, let needed, let available):
            "\(file.lastPathComponent): \(field) needs \(needed) bytes but only \(available) "
                + "remain in the file. Hint: the file is truncated or corrupt; download it again."
        case .malformed(let file, let field, let expected, let found):
            "\(file.lastPathComponent): \(field) is \(found), expected \(expected)."
        case .unknownType(let file, let tensor, let type):
            "\(file.lastPathComponent): tensor '\(tensor)' has unknown element type \(type)."
        case .unsupportedConversion(let file, let tensor, let type):
            "\(file.lastPathComponent): tensor '\(tensor)' of type \(type) cannot be converted "
                + "to Float32 by this reader."
        case .unsupportedVersion(let file, let found, let supported):
            "\(file.lastPathComponent): format version \(found) is not supported (supported: "
                + "\(supported.lowerBound)...\(supported.upperBound))."
        case .missingTensor(let file, let name):
            "\(file.lastPathComponent): no tensor named '\(name)'."
        case .countMismatch(let file, let tensor, let expected, let found):
            "\(file.lastPathComponent): tensor '\(tensor)' needs a buffer of \(expected) "
                + "elements but \(found) were given."
        case .invalidInput(let file, let field, let expected, let found):
            "\(file.lastPathComponent): cannot write \(field): expected \(expected), got \(found)."
        case .missingDefaultModel(let expected):
            "The default model is not cached at \(expected.path). Hint: run "
                + "scripts/pull-default-model.sh (or `rlhf models pull smollm2-135m-instruct`); "
                + "set RLHF_CACHE_DIR to use another cache directory."
        case .writeFailed(let file, let operation, let reason):
            "\(file.path): \(operation) failed (\(reason)); any previous file there is unchanged."
        }
    }
}
