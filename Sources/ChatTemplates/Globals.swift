// Global functions a chat template can call: jinja2's defaults that templates use
// (`namespace`, `range`, `dict`) and the two HF transformers adds (`raise_exception`,
// `strftime_now`).

import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

enum Globals {
    static func all(currentDate: Date) -> [String: Value] {
        [
            "raise_exception": function("raise_exception") { arguments in
                let message = try arguments.bind("raise_exception", ["message"], required: 1)[0]!
                throw EvalFailure(message.pythonString, isRaisedByTemplate: true)
            },
            "strftime_now": function("strftime_now") { arguments in
                let format = try arguments.bind("strftime_now", ["format"], required: 1)[0]!
                return .string(strftime(try format.requireString("format").text, currentDate))
            },
            "namespace": function("namespace") { arguments in
                var attributes = ValueObject()
                for value in arguments.positional {
                    guard case .object(let object) = value else {
                        throw EvalFailure(
                            "namespace() takes keyword arguments or a dict, not \(value.typeName)")
                    }
                    for (key, item) in object.pairs { attributes[key] = item }
                }
                for (name, value) in arguments.keyword { attributes[name] = value }
                return .namespace(Namespace(attributes))
            },
            "dict": function("dict") { arguments in
                guard arguments.positional.isEmpty else {
                    throw EvalFailure("dict() takes keyword arguments only")
                }
                return .object(ValueObject(arguments.keyword.map { ($0.name, $0.value) }))
            },
            "range": function("range", call: range),
        ]
    }

    private static func function(_ name: String, call: @escaping (CallArguments) throws -> Value)
        -> Value
    {
        .function(Function(name: name, call: call))
    }

    /// `range(stop)` / `range(start, stop[, step])`, capped like jinja2's sandbox (100 000 items).
    private static func range(_ arguments: CallArguments) throws -> Value {
        let numbers = try arguments.positional.map { value in
            guard let number = value.integer else {
                throw EvalFailure("range() arguments must be integers, not \(value.typeName)")
            }
            return number
        }
        guard (1...3).contains(numbers.count), arguments.keyword.isEmpty else {
            throw EvalFailure("range expected 1 to 3 integer arguments")
        }
        let start = numbers.count > 1 ? numbers[0] : 0
        let stop = numbers.count > 1 ? numbers[1] : numbers[0]
        let step = numbers.count > 2 ? numbers[2] : 1
        guard step != 0 else { throw EvalFailure("range() arg 3 must not be zero") }
        let values = Array(Swift.stride(from: start, to: stop, by: step).prefix(100_001))
        guard values.count <= 100_000 else {
            throw EvalFailure("range too big, the sandbox allows 100000 items")
        }
        return .array(values.map { .int($0) })
    }

    /// Python's `datetime.now().strftime(format)` in the local time zone.
    static func strftime(_ format: String, _ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        localtime_r(&seconds, &parts)
        var capacity = 256
        while capacity <= 1 << 16 {
            var buffer = [CChar](repeating: 0, count: capacity)
            let count = Foundation.strftime(&buffer, capacity, format, &parts)
            if count > 0 || format.isEmpty {
                return String(
                    decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            capacity *= 4
        }
        return ""
    }
}
