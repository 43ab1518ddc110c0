/// What `apply` did with one object; the API's answer lists one per applied document.
public struct ApplyOutcome: Sendable, Equatable, Codable {
    /// `Deployment` or `Service`.
    public var kind: String
    public var namespace: String
    public var name: String
    /// `created`, `configured` or `unchanged`.
    public var action: String

    public init(kind: String, namespace: String, name: String, action: String) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.action = action
    }
}

/// One invalid field of an applied document, as the API reports it in an error's `details`.
public struct InvalidField: Codable, Sendable, Equatable {
    /// Index of the document in the applied `items`.
    public var document: Int?
    /// `Kind/name` of the document, when known.
    public var object: String?
    public var path: String
    public var message: String

    public init(document: Int? = nil, object: String? = nil, path: String, message: String) {
        self.document = document
        self.object = object
        self.path = path
        self.message = message
    }
}
