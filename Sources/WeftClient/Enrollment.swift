import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL
import WeftCore

extension APIClient {
    /// Makes a join token (admin); the answer's `token` is the only copy of its secret.
    public func createJoinToken(ttlSeconds: Int, description: String?) async throws -> JoinTokenInfo {
        try await send(.POST, "/api/v1/tokens", body: try Self.encode(JoinTokenRequest(ttlSeconds: ttlSeconds, description: description)),
                       decoding: JoinTokenInfo.self)
    }

    /// Every join token, without secrets (admin).
    public func listJoinTokens() async throws -> [JoinTokenInfo] {
        struct Answer: Decodable { var items: [JoinTokenInfo] }
        return try await send(.GET, "/api/v1/tokens", decoding: Answer.self).items
    }

    /// Deletes a join token (admin); a missing one is an `APIError` 404.
    public func revokeJoinToken(id: String) async throws -> JoinTokenInfo {
        try await send(.DELETE, "/api/v1/tokens/\(Self.escape(id))", decoding: JoinTokenInfo.self)
    }

    /// Joins a node; the client's token must be a join token.
    public func join(_ request: JoinRequest) async throws -> JoinResponse {
        try await send(.POST, "/api/v1/join", body: try Self.encode(request), decoding: JoinResponse.self)
    }

    /// The cluster's shared settings, over the verified connection.
    public func clusterInfo() async throws -> ClusterInfo {
        try await send(.GET, "/api/v1/cluster-info", decoding: ClusterInfo.self)
    }
}

/// The first contact of a joining agent: `GET /api/v1/cluster-info` before it trusts anything, with
/// certificate verification off and no credential sent. The answer's CA is worth nothing until the
/// caller has checked it against the pin in its join token; every later request then verifies the
/// server against that CA.
public enum ClusterDiscovery {
    public static func fetchUnverified(server: String) async throws -> ClusterInfo {
        guard let url = URL(string: server), url.scheme == "https", url.host != nil else {
            throw ClientError("--server \"\(server)\" is not an https:// URL such as https://10.0.0.1:7443")
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        tls.minimumTLSVersion = .tlsv12
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, timeout: .init(connect: .seconds(10), read: .seconds(30)))
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.redirectConfiguration = .disallow
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        let base = server.hasSuffix("/") ? String(server.dropLast()) : server
        do {
            var request = HTTPClientRequest(url: base + "/api/v1/cluster-info")
            request.headers.add(name: "Accept", value: "application/json")
            request.headers.add(name: "User-Agent", value: "weft-agent")
            let response = try await http.execute(request, timeout: .seconds(30))
            let bytes = try await response.body.collect(upTo: 1024 * 1024)
            guard response.status.code == 200 else {
                throw APIError.from(status: Int(response.status.code), reason: response.status.reasonPhrase, body: Array(bytes.readableBytesView))
            }
            let info: ClusterInfo
            do {
                info = try JSONDecoder().decode(ClusterInfo.self, from: Data(bytes.readableBytesView))
            } catch {
                throw ClientError("\(server) answered GET /api/v1/cluster-info with something that is not Weft's cluster info; is it a Weft server?")
            }
            try? await http.shutdown()
            return info
        } catch {
            try? await http.shutdown()
            throw TransportFailure.describe(error, server: base)
        }
    }
}
