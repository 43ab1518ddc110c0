import Logging
import WeftClient
import WeftCore

/// Follows one kind from the API server the way every consumer should: list, then watch from the list's
/// revision; after an interruption resume from the last revision seen; when the server no longer has
/// that history (410), list again. Runs until cancelled; a server that is away only delays it, and the
/// consumer keeps acting on what it last saw (static stability).
struct ListWatch<T: Resource> {
    let client: APIClient
    let node: String?
    let logger: Logger

    init(_ type: T.Type, client: APIClient, node: String? = nil, logger: Logger) {
        self.client = client
        self.node = node
        self.logger = logger
    }

    /// `relisted` receives every object after each (re)list; `changed` every event after it.
    func run(relisted: ([T]) async -> Void, changed: (WatchEvent<T>) async -> Void) async {
        var resourceVersion: String?
        var delay = RetryDelay()
        while !Task.isCancelled {
            do {
                if resourceVersion == nil {
                    let (items, version) = try await client.list(T.self, namespace: nil)
                    await relisted(items)
                    resourceVersion = version
                }
                for try await event in client.watch(T.self, namespace: nil, resourceVersion: resourceVersion, node: node) {
                    delay.reset()
                    switch event {
                    case .added(let object), .modified(let object), .deleted(let object):
                        resourceVersion = object.metadata.resourceVersion ?? resourceVersion
                    case .bookmark(let version):
                        resourceVersion = version
                    }
                    await changed(event)
                }
            } catch let error as APIError where error.status == 410 {
                logger.info("watch history is gone; listing again", metadata: ["kind": "\(T.resourceKind.plural)"])
                resourceVersion = nil
                continue
            } catch {
                if Task.isCancelled { return }
                logger.warning("watch interrupted; resuming", metadata: ["kind": "\(T.resourceKind.plural)", "error": "\(error)"])
            }
            try? await Task.sleep(for: delay.next())
        }
    }
}
