/// Plain-text columns as kubectl prints them: upper-case headers, left-aligned, three spaces apart.
public struct Table: Sendable, Equatable {
    public var headers: [String]
    public var rows: [[String]]

    public init(headers: [String], rows: [[String]] = []) {
        self.headers = headers
        self.rows = rows
    }

    /// Column widths that fit the headers and every row.
    public var widths: [Int] {
        headers.indices.map { column in
            ([headers] + rows).map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0
        }
    }

    /// The whole table, one line per row after the header line, each ending in `\n`.
    public func render() -> String {
        let widths = self.widths
        return ([headers] + rows).map { Self.line($0, widths: widths) + "\n" }.joined()
    }

    /// One row padded to `widths` (wider cells push the rest right); no trailing spaces.
    public static func line(_ cells: [String], widths: [Int]) -> String {
        var out = ""
        for (column, cell) in cells.enumerated() {
            if column == cells.count - 1 {
                out += cell
            } else {
                let width = column < widths.count ? widths[column] : cell.count
                out += cell + String(repeating: " ", count: max(0, width - cell.count) + 3)
            }
        }
        return out
    }
}
