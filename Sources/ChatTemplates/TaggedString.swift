// A string that remembers which of its UTF-8 byte ranges came from an assistant message's
// `content`. Concatenation, slicing, strip/trim and split carry the marks along; any other
// transformation (upper, replace, tojson, …) drops them. The renderer writes tagged strings
// to its output, so assistant spans fall out of ordinary template evaluation.

struct TaggedString {
    /// A byte range of `text` that is a copy of message `message`'s content.
    struct Mark: Equatable {
        var range: Range<Int>
        var message: Int
    }

    private(set) var text: String
    /// Sorted, non-overlapping.
    private(set) var marks: [Mark]
    private(set) var utf8Count: Int

    init(_ text: String = "") {
        self.text = text
        marks = []
        utf8Count = text.utf8.count
    }

    /// The whole of `text` marked as coming from message `message`.
    init(_ text: String, markedAsMessage message: Int) {
        self.init(text)
        if utf8Count > 0 { marks = [Mark(range: 0..<utf8Count, message: message)] }
    }

    mutating func append(_ other: TaggedString) {
        for mark in other.marks {
            let shifted = Mark(
                range: mark.range.lowerBound + utf8Count..<mark.range.upperBound + utf8Count,
                message: mark.message)
            if let last = marks.last, last.message == shifted.message,
                last.range.upperBound == shifted.range.lowerBound
            {
                marks[marks.count - 1].range = last.range.lowerBound..<shifted.range.upperBound
            } else {
                marks.append(shifted)
            }
        }
        text += other.text
        utf8Count += other.utf8Count
    }

    mutating func append(_ plain: String) {
        text += plain
        utf8Count += plain.utf8.count
    }

    /// Adds a mark over the whole string (used for `{% generation %}` blocks).
    mutating func markWhole(as message: Int) {
        if utf8Count > 0 { marks.append(Mark(range: 0..<utf8Count, message: message)) }
    }

    static func + (lhs: TaggedString, rhs: TaggedString) -> TaggedString {
        var result = lhs
        result.append(rhs)
        return result
    }

    /// The bytes `range` of this string (on scalar boundaries), with marks clipped to it.
    func slice(utf8 range: Range<Int>) -> TaggedString {
        let utf8 = text.utf8
        let start = utf8.index(utf8.startIndex, offsetBy: range.lowerBound)
        let end = utf8.index(start, offsetBy: range.count)
        var result = TaggedString(String(text[start..<end]))
        for mark in marks {
            let lower = max(mark.range.lowerBound, range.lowerBound)
            let upper = min(mark.range.upperBound, range.upperBound)
            if lower < upper {
                result.marks.append(
                    Mark(
                        range: lower - range.lowerBound..<upper - range.lowerBound,
                        message: mark.message))
            }
        }
        return result
    }

    /// Builds a string from pieces of this one given as scalar-index ranges.
    func slice(scalars range: Range<Int>, offsets: [Int]) -> TaggedString {
        slice(utf8: offsets[range.lowerBound]..<offsets[range.upperBound])
    }

    /// UTF-8 offset of every scalar boundary: `offsets[i]` is where scalar `i` starts,
    /// and the last entry is the byte count.
    var scalarOffsets: [Int] {
        var offsets: [Int] = []
        offsets.reserveCapacity(utf8Count + 1)
        var offset = 0
        for scalar in text.unicodeScalars {
            offsets.append(offset)
            offset += UTF8.width(scalar)
        }
        offsets.append(offset)
        return offsets
    }
}
