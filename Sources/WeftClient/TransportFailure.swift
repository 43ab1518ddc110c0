import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL

/// Turns errors from the HTTP stack into one sentence a user can act on.
enum TransportFailure {
    static func describe(_ error: any Error, server: String) -> any Error {
        switch error {
        case is APIError, is ClientError, is CancellationError:
            return error
        case let error as HTTPClientError:
            switch error {
            case .cancelled, .requestStreamCancelled:
                return CancellationError()
            case .connectTimeout, .getConnectionFromPoolTimeout:
                return unreachable(server, "connection timed out")
            case .readTimeout, .deadlineExceeded:
                return ClientError("the API server at \(server) did not answer in time")
            case .remoteConnectionClosed:
                return ClientError("the API server at \(server) closed the connection; it may be restarting, try again")
            case .tlsHandshakeTimeout:
                return ClientError("TLS handshake with the API server at \(server) timed out")
            default:
                return ClientError("request to the API server at \(server) failed: \(error)")
            }
        case let error as NIOSSLExtraError where error == .failedToValidateHostname:
            return ClientError("the API server's certificate is not valid for \(server); check `server` in the client config")
        case is NIOSSLError, is NIOSSLExtraError, is BoringSSLError:
            let text = String(describing: error)
            if text.contains("CERTIFICATE_VERIFY_FAILED") {
                return ClientError("the API server at \(server) presented a certificate not signed by the cluster CA in the client config; is the config for this cluster?")
            }
            return ClientError("TLS with the API server at \(server) failed: \(text)")
        case let error as IOError:
            return unreachable(server, String(cString: strerror(error.errnoCode)).lowercased())
        default:
            // NIOPosix's NIOConnectionError (connection refused, DNS failure) is not visible from here.
            if String(reflecting: type(of: error)).hasSuffix("NIOConnectionError") {
                return unreachable(server, connectionReason(error))
            }
            return ClientError("request to the API server at \(server) failed: \(error)")
        }
    }

    private static func unreachable(_ server: String, _ reason: String) -> ClientError {
        ClientError("the API server at \(server) is not reachable (\(reason)); is `weft server` running?")
    }

    /// The first underlying error of a connection failure, e.g. "connection refused".
    private static func connectionReason(_ error: any Error) -> String {
        let mirror = Mirror(reflecting: error)
        for child in mirror.children where child.label == "connectionErrors" {
            for failure in Mirror(reflecting: child.value).children {
                for field in Mirror(reflecting: failure.value).children where field.label == "error" {
                    if let io = field.value as? IOError {
                        return String(cString: strerror(io.errnoCode)).lowercased()
                    }
                    return String(describing: field.value)
                }
            }
        }
        for child in mirror.children where child.label?.hasPrefix("dns") == true {
            if let value = child.value as? (any Error) { return "cannot resolve the host: \(value)" }
        }
        return "cannot connect"
    }
}
