import Foundation

/// Elapsed time as kubectl's AGE column shows it: `5s`, `3m`, `2h`, `4d`.
public enum Age {
    /// `seconds` in the largest whole unit, never negative.
    public static func format(seconds: Int) -> String {
        let s = max(0, seconds)
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" }
        if s < 86400 { return "\(s / 3600)h" }
        return "\(s / 86400)d"
    }

    /// The age of an RFC 3339 timestamp at `now`; `<unknown>` when it is missing or unreadable.
    public static func since(_ timestamp: String?, now: Date = Date()) -> String {
        guard let timestamp, let date = parse(timestamp) else { return "<unknown>" }
        return format(seconds: Int(now.timeIntervalSince(date).rounded(.down)))
    }

    /// Parses RFC 3339 with or without fractional seconds.
    public static func parse(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
