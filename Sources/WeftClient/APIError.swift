import Foundation
import WeftCore

/// A non-2xx answer from the API server, from its `{"error": {...}}` body (docs/api.md).
public struct APIError: Error, Sendable, CustomStringConvertible {
    /// One invalid field of an applied document.
    public typealias Detail = InvalidField

    /// The HTTP status (or, for a watch `ERROR` event, its code, e.g. 410).
    public var status: Int
    public var message: String
    public var details: [Detail]

    public init(status: Int, message: String, details: [Detail] = []) {
        self.status = status
        self.message = message
        self.details = details
    }

    public var description: String {
        var lines = [message.isEmpty ? "the API server answered \(status)" : message]
        for detail in details {
            let object = detail.object.map { "\($0): " } ?? ""
            lines.append("  \(object)\(detail.path.isEmpty ? "" : "\(detail.path): ")\(detail.message)")
        }
        return lines.joined(separator: "\n")
    }

    /// Reads an error body; falls back to the body text or the status when it is not the API's JSON.
    static func from(status: Int, reason: String, body: [UInt8]) -> APIError {
        struct Envelope: Decodable {
            struct Body: Decodable {
                var code: Int?
                var message: String?
                var details: [Detail]?
            }
            var error: Body
        }
        if let envelope = try? JSONDecoder().decode(Envelope.self, from: Data(body)) {
            return APIError(status: status, message: envelope.error.message ?? reason, details: envelope.error.details ?? [])
        }
        let text = String(decoding: body.prefix(500), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return APIError(status: status, message: text.isEmpty ? "the API server answered \(status) \(reason)" : "the API server answered \(status): \(text)")
    }
}
