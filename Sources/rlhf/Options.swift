// Options shared by several subcommands.

import ArgumentParser
import Datasets
import Foundation
import ModelExport
import ModelFormats
import Models

struct ModelOptions: ParsableArguments {
    @Option(
        name: .long,
        help:
            ArgumentHelp(
                "A built-in model name (default \(ModelRegistry.defaultModelName)), a .gguf file, or a Hugging Face"
                    + " model"
                    + " directory.")
    )
    var model: String = ModelRegistry.defaultModelName
    @Option(help: "A LoRA adapter to apply: a PEFT directory, or a training checkpoint / output directory.")
    var adapter: String?
    @Flag(
        help:
            ArgumentHelp(
                "Keep a GGUF's quantised weights (Q4_1/Q8_0/F16) as they are and decode them on the fly (the default of"
                    + " generate, chat and logprobs): the file's exact weights, so the same results as dequantising"
                    + " them to"
                    + " Float32 but ~5x less weight memory and faster decoding; frozen base only (LoRA training:"
                    + " QLoRA-style).")
    )
    var quantized = false
    @Flag(help: "Dequantise a GGUF's weights to Float32 at load, even for generate, chat and logprobs.")
    var dense = false
    @Flag(
        help:
            ArgumentHelp(
                "Hold the frozen base in bf16 and multiply in bf16 (inputs rounded to bf16, fp32 sums; llama.cpp's BF16"
                    + " semantics): half the weight memory of fp32 and, on CPUs with AVX512_BF16, about 1.5x faster"
                    + " batched"
                    + " generation; log-probs differ from fp32 by ~1e-2. Frozen base only.")
    )
    var bf16 = false

    /// Loads the model through `ModelLoader` (with `--adapter`, the adapter and its heads too). `inference`
    /// (generate, chat, logprobs, a full fine-tune's frozen reference): a GGUF's quantised weights are kept unless `--dense` or `--bf16` is given —
    /// they are the file's exact values and every product computes in fp32, so results match the dequantised
    /// model (tested against transformers' goldens at the fp32 bounds) while batched decoding runs on the
    /// compute-bound decode panels and batch-1 decoding reads ~5x fewer bytes.
    func load(trainable: Bool = false, inference: Bool = false) throws -> LoadedModel {
        let start = Date()
        if quantized && trainable {
            throw InputError(
                "--quantized keeps the base frozen: use it with LoRA (--lora-rank > 0), not a full fine-tune.")
        }
        if bf16 && trainable {
            throw InputError("--bf16 keeps the base frozen: use it with LoRA (--lora-rank > 0), not a full fine-tune.")
        }
        if bf16 && quantized {
            throw InputError(
                "Pass either --quantized (keep the file's quantised weights) or --bf16 (convert them to bf16), not"
                    + " both."
            )
        }
        if dense && (quantized || bf16) {
            throw InputError(
                "--dense (Float32 weights) contradicts \(quantized ? "--quantized" : "--bf16"); pass one of them.")
        }
        let form: ModelLoader.WeightForm =
            bf16 ? .bf16 : quantized || (inference && !dense && !trainable) ? .quantized : .dense
        let loaded = try ModelLoader.load(
            model: model, form: form, trainable: trainable, adapter: adapter.map { URL(fileURLWithPath: $0) },
            log: note)
        if let a = loaded.adapter {
            note(
                "Applied LoRA adapter \(adapter!) (r=\(a.config.rank))"
                    + (loaded.heads.isEmpty
                        ? "" : " with head(s) \(loaded.heads.keys.sorted().joined(separator: ", "))"))
        }
        let q = loaded.model.quantizedWeights.values
        note(
            String(
                format: "Loaded %@ (%.1f M parameters%@) in %.2f s", loaded.source.lastPathComponent,
                Double(loaded.model.weights.parameterCount + q.reduce(0) { $0 + $1.rows * $1.columns }) / 1e6,
                q.isEmpty
                    ? ""
                    : String(
                        format: ", %d tensors kept %@: %.0f MB", q.count, bf16 ? "in bf16" : "quantised",
                        Double(q.reduce(0) { $0 + $1.byteCount }) / 1e6),
                Date().timeIntervalSince(start)))
        return loaded
    }
}

struct SamplingFlags: ParsableArguments {
    @Option(help: "Maximum number of new tokens.") var maxNewTokens: Int = 128
    @Option(help: "Sampling temperature; 0 = greedy.") var temperature: Float = SamplingOptions.greedy.temperature
    @Option(help: "Keep only the k most likely tokens (0 = off).") var topK: Int = SamplingOptions.greedy.topK
    @Option(help: "Nucleus sampling: keep the smallest set with this much probability (1 = off).") var topP: Float =
        SamplingOptions.greedy.topP
    @Option(help: "Random seed for sampling.") var seed: UInt64 = SamplingOptions.greedy.seed

    func validate() throws {
        guard maxNewTokens > 0 else { throw ValidationError("Please pass --max-new-tokens ≥ 1.") }
        guard temperature == 0 || temperature >= SamplingOptions.minimumTemperature else {
            throw ValidationError("Please pass --temperature 0 (greedy) or ≥ \(SamplingOptions.minimumTemperature).")
        }
        guard topK >= 0 else { throw ValidationError("Please pass --top-k ≥ 0.") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("Please pass --top-p in (0, 1].") }
    }

    func options(stop: Set<Int>) -> GenerationOptions {
        GenerationOptions(
            maxNewTokens: maxNewTokens,
            sampling: SamplingOptions(temperature: temperature, topK: topK, topP: topP, seed: seed),
            stopTokenIDs: stop)
    }
}

/// Renders a conversation with the model's chat template plus the generation prompt and tokenizes it
/// (Datasets' encoder: template markup parses special tokens, message content never does).
func encodeChat(_ loaded: LoadedModel, _ messages: [Message]) throws -> [Int] {
    guard loaded.chatTemplate != nil || loaded.tokenizer.chatTemplate != nil else {
        throw InputError("\(loaded.source.path): the model has no chat template; use --prompt instead.")
    }
    return try PromptEncoder(tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate)
        .encode(.conversation(messages)).map(Int.init)
}

/// Reads a chat file: a JSON array of {"role", "content"} or an object with "messages".
func readChatFile(_ path: String) throws -> [Message] {
    let data: Data
    do { data = try FileContents.read(URL(fileURLWithPath: path)) } catch {
        throw InputError("\(path): cannot read the chat file (\(error.reason)).")
    }
    let json: Any
    do { json = try JSONSerialization.jsonObject(with: data) } catch {
        throw InputError(
            "\(path): not valid JSON (\(error.localizedDescription)); expected [{\"role\": …, \"content\": …}, …].")
    }
    let list = (json as? [Any]) ?? ((json as? [String: Any])?["messages"] as? [Any])
    guard let list else {
        throw InputError("\(path): expected a JSON array of messages or an object with \"messages\".")
    }
    return try list.enumerated().map { i, item in
        guard let m = item as? [String: Any] else { throw InputError("\(path): messages[\(i)]: expected an object.") }
        guard let role = (m["role"] as? String).flatMap(Message.Role.init(rawValue:)) else {
            throw InputError("\(path): messages[\(i)].role: expected \"system\", \"user\" or \"assistant\".")
        }
        guard let content = m["content"] as? String else {
            throw InputError("\(path): messages[\(i)].content: expected a string.")
        }
        return Message(role: role, content: content)
    }
}
