import WeftCore

/// An API error: the HTTP status, a message for the user and, for invalid manifests, the field errors.
public struct APIFailure: Error, Sendable, CustomStringConvertible {
    public typealias Detail = InvalidField

    public var code: Int
    public var message: String
    public var details: [Detail]

    public init(code: Int, message: String, details: [Detail] = []) {
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String { "\(code): \(message)" }

    static func notFound(_ kind: ResourceKind, namespace: String, name: String) -> APIFailure {
        let place = kind.isNamespaced ? " in namespace \"\(namespace)\"" : ""
        return APIFailure(code: 404, message: "\(kind.rawValue.lowercased()) \"\(name)\" not found\(place)")
    }

    static func badRequest(_ message: String) -> APIFailure { APIFailure(code: 400, message: message) }

    static func conflict(_ message: String) -> APIFailure { APIFailure(code: 409, message: message) }
}
