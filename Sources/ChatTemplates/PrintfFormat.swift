// Python's printf-style formatting (`'%s: %d' % (name, count)` and the `format` filter) for
// the conversions templates use: %s %r %d %i %f %F %x %X %%, with an optional `(key)` for
// dict arguments, the flags `-`, `+`, ` `, `0`, a width and a precision. Lists stand in for
// Python tuples (this engine has no separate tuple type).

import Foundation

/// One `%…` directive.
private struct Conversion {
    var key: String?
    var flags = Set<Unicode.Scalar>()
    var width = 0
    var precision: Int?
    var type: Unicode.Scalar = "s"

    var isNumeric: Bool { !"sr".unicodeScalars.contains(type) }

    /// Parses the directive after a `%` at `index`, leaving `index` after its type letter.
    init(_ scalars: [Unicode.Scalar], _ index: inout Int) throws {
        func number() -> Int? {
            var value: Int?
            while index < scalars.count, let digit = Int(String(scalars[index])),
                value ?? 0 < 1_000_000
            {
                value = (value ?? 0) * 10 + digit
                index += 1
            }
            return value
        }
        if index < scalars.count, scalars[index] == "(" {
            guard let close = scalars[index...].firstIndex(of: ")") else {
                throw EvalFailure("incomplete format key")
            }
            key = String(String.UnicodeScalarView(scalars[index + 1..<close]))
            index = close + 1
        }
        while index < scalars.count, "-+ 0#".unicodeScalars.contains(scalars[index]) {
            flags.insert(scalars[index])
            index += 1
        }
        width = number() ?? 0
        if index < scalars.count, scalars[index] == "." {
            index += 1
            precision = number() ?? 0
        }
        guard index < scalars.count else { throw EvalFailure("incomplete format") }
        type = scalars[index]
        index += 1
    }
}

func printfFormat(_ format: String, _ arguments: Value) throws -> String {
    var positional = [arguments]
    var mapping: ValueObject?
    switch arguments {
    case .array(let items): positional = items
    case .object(let object): mapping = object
    default: break
    }
    let scalars = Array(format.unicodeScalars)
    var result = ""
    var index = 0
    var used = 0
    while index < scalars.count {
        guard scalars[index] == "%" else {
            result.unicodeScalars.append(scalars[index])
            index += 1
            continue
        }
        index += 1
        let conversion = try Conversion(scalars, &index)
        if conversion.type == "%" {
            result += "%"
            continue
        }
        let value: Value
        if let key = conversion.key {
            guard let mapping else { throw EvalFailure("format requires a mapping") }
            guard let found = mapping[key] else {
                throw EvalFailure("format key '\(key)' not found")
            }
            value = found
        } else {
            guard used < positional.count else {
                throw EvalFailure("not enough arguments for format string")
            }
            value = positional[used]
            used += 1
        }
        result += pad(try convert(value, conversion), conversion)
    }
    // Python: every positional argument must be consumed; a single non-list argument too.
    let allConsumed = if case .array = arguments { used == positional.count } else { used == 1 }
    guard mapping != nil || allConsumed else {
        throw EvalFailure("not all arguments converted during string formatting")
    }
    return result
}

private func convert(_ value: Value, _ conversion: Conversion) throws -> String {
    let type = conversion.type
    func integer() throws -> Int {
        if let integer = value.integer { return integer }
        guard let number = value.number, let integer = Int(exactly: number.rounded(.towardZero))
        else {
            throw EvalFailure("%\(type) format: a real number is required, not \(value.typeName)")
        }
        return integer
    }
    var text: String
    switch type {
    case "s":
        let full = value.pythonString.unicodeScalars
        return String(String.UnicodeScalarView(full.prefix(conversion.precision ?? full.count)))
    case "r":
        return value.pythonRepr
    case "d", "i":
        text = String(try integer())
    case "x", "X":
        let integer = try integer()
        text =
            (integer < 0 ? "-" : "") + String(integer.magnitude, radix: 16, uppercase: type == "X")
    case "f", "F":
        guard let number = value.number else {
            throw EvalFailure("%\(type) format: a real number is required, not \(value.typeName)")
        }
        let digits = min(conversion.precision ?? 6, 100)
        text = number.isFinite ? String(format: "%.\(digits)f", number) : pythonFloatRepr(number)
    default:
        throw EvalFailure("unsupported format character '\(type)'")
    }
    if !text.hasPrefix("-") {
        if conversion.flags.contains("+") {
            text = "+" + text
        } else if conversion.flags.contains(" ") {
            text = " " + text
        }
    }
    return text
}

/// Pads to the directive's width: left by default, right with `-`, zeros after the sign with `0`.
private func pad(_ text: String, _ conversion: Conversion) -> String {
    let count = text.unicodeScalars.count
    guard count < conversion.width else { return text }
    let flags = conversion.flags
    let zeroFill = flags.contains("0") && conversion.isNumeric && !flags.contains("-")
    let padding = String(repeating: zeroFill ? "0" : " ", count: conversion.width - count)
    if flags.contains("-") { return text + padding }
    if zeroFill, let sign = text.unicodeScalars.first, "+- ".unicodeScalars.contains(sign) {
        return String(sign) + padding + String(text.unicodeScalars.dropFirst())
    }
    return padding + text
}
