import NIOCore
import NIOHTTP1

/// The answers of one replica, rendered once at start-up so that the hot path only copies buffers.
///
/// `HTTPHeaders` and `ByteBuffer` are copy-on-write: handing out these prebuilt values costs no allocation.
struct DemoAnswers: Sendable {
    /// `{"service":…,"version":…,"replica":…,"address":…` without the closing brace.
    let identityPrefix: ByteBuffer
    let ok: ByteBuffer
    let okHeaders: HTTPHeaders
    let injectedFailure: ByteBuffer
    let injectedFailureHeaders: HTTPHeaders
    let healthy: ByteBuffer
    let healthyHeaders: HTTPHeaders
    let methodNotAllowed: ByteBuffer
    let methodNotAllowedHeaders: HTTPHeaders

    init(configuration: DemoConfiguration, port: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        let prefix =
            "{\"service\":\(JSONText.quoted(configuration.serviceName))"
            + ",\"version\":\(JSONText.quoted(configuration.version))"
            + ",\"replica\":\(JSONText.quoted(configuration.replicaName))"
            + ",\"address\":\(JSONText.quoted(configuration.replicaAddress(port: port)))"
        self.identityPrefix = allocator.buffer(string: prefix)
        self.ok = allocator.buffer(string: prefix + "}")
        self.okHeaders = Self.headers(contentType: Self.json, length: self.ok.readableBytes)
        self.injectedFailure = allocator.buffer(
            string: prefix + ",\"error\":\(JSONText.quoted("injected failure (FAIL_RATE=\(configuration.failRate))"))}"
        )
        self.injectedFailureHeaders = Self.headers(contentType: Self.json, length: self.injectedFailure.readableBytes)
        self.healthy = allocator.buffer(string: "ok")
        self.healthyHeaders = Self.headers(contentType: Self.text, length: self.healthy.readableBytes)
        self.methodNotAllowed = allocator.buffer(string: "{\"error\":\"method not allowed, use GET\"}")
        var methodNotAllowedHeaders = Self.headers(contentType: Self.json, length: self.methodNotAllowed.readableBytes)
        methodNotAllowedHeaders.add(name: "allow", value: "GET")
        self.methodNotAllowedHeaders = methodNotAllowedHeaders
    }

    /// `GET /` with the upstream's JSON answer embedded verbatim under `upstream`.
    func withUpstream(_ upstreamJSON: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var body = allocator.buffer(capacity: identityPrefix.readableBytes + upstreamJSON.readableBytes + 14)
        body.writeImmutableBuffer(identityPrefix)
        body.writeStaticString(",\"upstream\":")
        body.writeImmutableBuffer(upstreamJSON)
        body.writeStaticString("}")
        return body
    }

    /// `GET /` whose upstream call failed: `upstream` is `{"error":…,"address":…,"status"?:…}`.
    func withUpstreamFailure(_ failure: String, target: UpstreamTarget, status: Int?) -> String {
        var object = "{\"error\":\(JSONText.quoted(failure)),\"address\":\(JSONText.quoted(target.description))"
        if let status {
            object += ",\"status\":\(status)"
        }
        object += "}"
        return String(buffer: identityPrefix) + ",\"upstream\":" + object + "}"
    }

    static func notFound(path: Substring) -> String {
        "{\"error\":\"not found\",\"path\":\(JSONText.quoted(String(path)))}"
    }

    static let json = "application/json"
    static let text = "text/plain; charset=utf-8"

    static func headers(contentType: String, length: Int) -> HTTPHeaders {
        HTTPHeaders([("content-type", contentType), ("content-length", String(length))])
    }
}
