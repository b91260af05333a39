// Where the built-in default model (SmolLM2-135M-Instruct, Q4_1 GGUF) lives in the local cache.
// The lookup order matches scripts/pull-default-model.sh, which fills the cache:
// $RLHF_CACHE_DIR, else $XDG_CACHE_HOME/rlhfkit, else ~/.cache/rlhfkit (empty variables count
// as unset, as in the script's `${VAR:-…}`).
import Foundation

/// Cache paths for the default model, shared by every target that needs the GGUF.
public enum DefaultModelLocation {
    /// Registry identifier of the default model.
    public static let modelIdentifier = "smollm2-135m-instruct"
    /// File name of the default GGUF.
    public static let fileName = "SmolLM2-135M-Instruct.Q4_1.gguf"
    /// The script that downloads and verifies it.
    public static let pullScript = "scripts/pull-default-model.sh"

    /// The rlhfkit cache directory for `environment`.
    public static func cacheDirectory(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> URL {
        if let dir = environment["RLHF_CACHE_DIR"], !dir.isEmpty {
            return URL(fileURLWithPath: dir, isDirectory: true)
        }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            return URL(fileURLWithPath: xdg, isDirectory: true).appendingPathComponent("rlhfkit")
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return URL(fileURLWithPath: home, isDirectory: true)
            .appendingPathComponent(".cache/rlhfkit")
    }

    /// `<cache>/models/<identifier>`.
    public static func modelDirectory(
        identifier: String = modelIdentifier,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> URL {
        cacheDirectory(environment: environment).appendingPathComponent("models")
            .appendingPathComponent(identifier)
    }

    /// Path of the default GGUF, whether or not it exists.
    public static func ggufFile(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> URL {
        modelDirectory(environment: environment).appendingPathComponent(fileName)
    }

    /// Path of the default GGUF if it is cached.
    /// - Throws: ``ModelFormatError/missingDefaultModel(expected:)`` telling to run
    ///   `scripts/pull-default-model.sh`.
    public static func existingGGUFFile(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> URL {
        let url = ggufFile(environment: environment)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ModelFormatError.missingDefaultModel(expected: url)
        }
        return url
    }
}
