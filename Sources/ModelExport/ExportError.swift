// Errors of the exporters (PEFT adapters, Hugging Face directories, GGUF files) and of the PEFT
// adapter reader. Every case names the file or directory at fault and what was expected, and
// `description` renders one sentence with a hint, as ModelFormats' `ModelFormatError` does.

import Foundation
import Models

/// A problem writing an export, or reading a PEFT adapter back.
public enum ExportError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The destination holds files this exporter did not write; nothing was changed.
    case destinationNotEmpty(path: String, unexpected: [String])
    /// The destination exists but is the wrong kind of thing (a file where a directory is
    /// needed, a directory where a file is needed, or a file that is not a GGUF).
    case destinationConflict(path: String, found: String, expected: String)
    /// A file system operation failed; any previous export at `path` is unchanged.
    case writeFailed(path: String, operation: String, reason: String)
    /// A file an import needs is not there.
    case missingFile(path: String, hint: String)
    /// A file could not be read or parsed.
    case unreadable(path: String, reason: String)
    /// A field holds a value of the wrong type or out of range.
    case invalidField(file: String, field: String, found: String, expected: String)
    /// A feature of the source that this exporter or importer cannot represent.
    case unsupported(file: String, feature: String, hint: String)
    /// An adapter lists a module this package cannot adapt.
    case unknownTargetModule(file: String, module: String, supported: [String])
    /// A tensor the model needs is missing from the file.
    case missingTensor(file: String, name: String, hint: String)
    /// A tensor has a different shape than the model expects.
    case shapeMismatch(file: String, name: String, expected: [Int], found: [Int], hint: String)
    /// The file holds a tensor the model has no place for.
    case unexpectedTensor(file: String, name: String, hint: String)
    /// A tensor is stored in an element type that cannot be read as floats.
    case unsupportedDType(file: String, tensor: String, dtype: String, supported: String)
    /// The tokenizer has more tokens than the model has embedding rows.
    case vocabularyMismatch(tokenizer: Int, model: Int)
    /// The adapter was built for a model of another shape.
    case adapterMismatch(adapter: String, name: String, expected: [Int], found: [Int])

    public var description: String {
        switch self {
        case .destinationNotEmpty(let path, let unexpected):
            "\(path): the directory is not empty and does not look like a previous export "
                + "(unexpected: \(unexpected.prefix(5).joined(separator: ", "))"
                + "\(unexpected.count > 5 ? ", …" : "")); nothing was written. "
                + "Hint: choose an empty or new directory, or pass --overwrite (overwrite: true in Swift) to replace it."
        case .destinationConflict(let path, let found, let expected):
            "\(path): found \(found), expected \(expected); nothing was written. "
                + "Hint: choose another destination, or pass --overwrite (overwrite: true in Swift) to replace it."
        case .writeFailed(let path, let operation, let reason):
            "\(path): \(operation) failed (\(reason)); any previous export there is unchanged."
        case .missingFile(let path, let hint): "\(path): file not found. \(hint)"
        case .unreadable(let path, let reason): "\(path): cannot read (\(reason))."
        case .invalidField(let file, let field, let found, let expected):
            "\(file): field '\(field)' is \(found), expected \(expected)."
        case .unsupported(let file, let feature, let hint):
            "\(file): \(feature) is not supported. \(hint)"
        case .unknownTargetModule(let file, let module, let supported):
            "\(file): target module '\(module)' is not supported; supported: "
                + "\(supported.joined(separator: ", ")) (lm_head and embeddings are not)."
        case .missingTensor(let file, let name, let hint):
            "\(file): tensor '\(name)' is missing. \(hint)"
        case .shapeMismatch(let file, let name, let expected, let found, let hint):
            "\(file): tensor '\(name)' has shape \(found) but the model expects \(expected). \(hint)"
        case .unexpectedTensor(let file, let name, let hint):
            "\(file): tensor '\(name)' has no place in the model. \(hint)"
        case .unsupportedDType(let file, let tensor, let dtype, let supported):
            "\(file): tensor '\(tensor)' is stored as \(dtype); supported: \(supported)."
        case .vocabularyMismatch(let tokenizer, let model):
            "the tokenizer has \(tokenizer) tokens but the model embeds only \(model). "
                + "Hint: export with the tokenizer the model was trained with."
        case .adapterMismatch(let adapter, let name, let expected, let found):
            "adapter '\(adapter)': '\(name)' has shape \(found) but this model needs \(expected). "
                + "Hint: the adapter was made for a different base model."
        }
    }
}

extension ExportError {
    /// Exports write dense weights: a model whose base is kept quantised (QLoRA-style) or in bf16 is refused.
    static func requireDense(_ model: LlamaModel) throws {
        guard !model.hasQuantizedWeights else {
            let bf16 = model.hasBF16Weights
            throw ExportError.unsupported(
                file: "(model in memory)",
                feature: "weights kept \(bf16 ? "in bf16" : "quantised") (\(model.quantizedWeights.count) tensors)",
                hint:
                    "load the base model with fp32 weights (without \(bf16 ? "--bf16" : "--quantized")) to export or"
                    + " merge it; an adapter trained on that base applies to the fp32 base unchanged."
            )
        }
    }
}
