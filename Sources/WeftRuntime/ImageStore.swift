import Crypto
import Foundation
import Logging
import WeftCore

/// What a container inherits from its image's config (`config` of the OCI image config): the entrypoint
/// and command a template's `command`/`args` override, the environment, working directory and user.
public struct ImageRuntimeConfig: Codable, Sendable, Hashable {
    public var entrypoint: [String]?
    public var cmd: [String]?
    public var env: [String]?
    public var workingDir: String?
    public var user: String?

    public init(entrypoint: [String]? = nil, cmd: [String]? = nil, env: [String]? = nil, workingDir: String? = nil, user: String? = nil) {
        self.entrypoint = entrypoint
        self.cmd = cmd
        self.env = env
        self.workingDir = workingDir
        self.user = user
    }

    enum CodingKeys: String, CodingKey {
        case entrypoint = "Entrypoint", cmd = "Cmd", env = "Env", workingDir = "WorkingDir", user = "User"
    }

    /// `process.args` with Kubernetes semantics: `command` replaces the entrypoint and `args` the image's
    /// `Cmd`; `command` alone drops `Cmd`.
    public func arguments(command: [String]?, args: [String]?) -> [String] {
        if let command, !command.isEmpty { return command + (args ?? []) }
        return (entrypoint ?? []) + (args ?? cmd ?? [])
    }
}

/// One image on a node: its name, the digests it was imported with and where its root filesystem is.
public struct StoredImage: Codable, Sendable, Hashable {
    public var name: String
    /// `sha256:<hex>` of the image manifest.
    public var manifestDigest: String
    public var configDigest: String
    public var layers: [String]
    /// Bytes of the (compressed) layers.
    public var size: Int64
    public var importedAt: String
    public var config: ImageRuntimeConfig
}

/// Where images come from. Only local files exist here (an OCI image layout, as a directory or a tar, or a
/// `docker save` tar); a registry pull would be another source that hands the store the same blobs.
public protocol ImageSource: Sendable {
    /// The images the source offers: a name when the source knows one, the manifest's digest, its config
    /// and its layers, each blob with a local file to read it from.
    func images() throws -> [SourceImage]
}

/// One image as a source offers it.
public struct SourceImage: Sendable {
    public struct Blob: Sendable {
        /// `sha256:<hex>`: what the file's content must hash to (nil where the source gives no digest).
        public var digest: String?
        public var path: String
        public var mediaType: String?
    }

    public var name: String?
    public var manifestDigest: String?
    public var manifest: Data?
    public var config: Blob
    public var layers: [Blob]
}

/// The node's images under `<data-dir>/images`: `index.json` (name → manifest digest and config),
/// `blobs/sha256/<hex>` (manifests and configs) and `rootfs/<manifest hex>/` (the layers unpacked, in
/// order, with whiteouts applied), which containers mount read-only. Writes go through temporary names
/// and a rename, so a reader never sees half an image.
public final class ImageStore: Sendable {
    public let directory: String
    private let tar: ToolCommand

    public init(directory: String, tarPath: String = "/usr/bin/tar", logger: Logger = Logger(label: "weft.images")) {
        self.directory = directory
        self.tar = ToolCommand(path: tarPath, code: .image, logger: logger)
    }

    private var indexPath: String { (directory as NSString).appendingPathComponent("index.json") }
    private var rootfsDirectory: String { (directory as NSString).appendingPathComponent("rootfs") }

    /// The root filesystem directory of an image with manifest `digest`.
    public func rootfs(manifestDigest digest: String) -> String {
        (rootfsDirectory as NSString).appendingPathComponent(Self.hex(digest))
    }

    /// Every image, by name.
    public func list() throws -> [StoredImage] {
        try loadIndex().values.sorted { $0.name < $1.name }
    }

    /// The image named `reference`, or a ``RuntimeError`` (`.image`) saying how to import it.
    public func image(_ reference: ImageReference, node: String? = nil) throws -> StoredImage {
        guard let image = try loadIndex()[reference.description] else {
            let place = node.map { " on node \($0)" } ?? ""
            throw RuntimeError(code: .image, message: "image \"\(reference)\" not found\(place); import it with weft image import FILE --name \(reference) (no registry is reachable: images come from files)")
        }
        guard access(rootfs(manifestDigest: image.manifestDigest), F_OK) == 0 else {
            throw RuntimeError(code: .image, message: "the root filesystem of image \"\(reference)\" is missing from \(rootfsDirectory); import the image again")
        }
        return image
    }

    /// Imports the images of a local file: an OCI image layout directory, or a tar of one, or a
    /// `docker save` tar. `name` names the image when the file holds exactly one; otherwise the names come
    /// from the file. Verifies every blob's sha256 before anything is recorded.
    public func importImages(from path: String, name: ImageReference? = nil) async throws -> [StoredImage] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw RuntimeError(code: .image, message: "\(path) does not exist; give an OCI image layout directory or a tar of one (docker save, skopeo copy oci-archive:...)")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let staging = (directory as NSString).appendingPathComponent("tmp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let layoutDirectory: String
        if isDirectory.boolValue {
            layoutDirectory = path
        } else {
            layoutDirectory = (staging as NSString).appendingPathComponent("archive")
            try FileManager.default.createDirectory(atPath: layoutDirectory, withIntermediateDirectories: true)
            try await tar.run(["-x", "-f", path, "-C", layoutDirectory, "--no-same-owner"], timeout: .seconds(600))
        }
        return try await importImages(from: LocalImageSource(directory: layoutDirectory), name: name, staging: staging)
    }

    /// Imports what `source` offers (the entry point a registry pull would use as well).
    public func importImages(from source: some ImageSource, name: ImageReference?, staging: String) async throws -> [StoredImage] {
        let offered = try source.images()
        guard !offered.isEmpty else { throw RuntimeError(code: .image, message: "the file holds no image") }
        if name != nil && offered.count > 1 {
            throw RuntimeError(code: .image, message: "the file holds \(offered.count) images (\(offered.compactMap(\.name).joined(separator: ", "))); --name names one — leave it out to import them under their own names")
        }
        var imported: [StoredImage] = []
        for image in offered {
            guard let reference = name ?? image.name.flatMap(ImageReference.init) else {
                throw RuntimeError(code: .image, message: "the image in the file has no name\(image.name.map { " usable here (\"\($0)\")" } ?? ""); give one with --name NAME:TAG")
            }
            imported.append(try await store(image, as: reference, staging: staging))
        }
        return imported
    }

    /// Removes the name `reference`, and the image's files once no other name uses them.
    public func remove(_ reference: ImageReference) throws {
        var index = try loadIndex()
        guard let removed = index.removeValue(forKey: reference.description) else {
            throw RuntimeError(code: .image, message: "image \"\(reference)\" not found; weft image list shows the node's images")
        }
        try saveIndex(index)
        guard !index.values.contains(where: { $0.manifestDigest == removed.manifestDigest }) else { return }
        try? FileManager.default.removeItem(atPath: rootfs(manifestDigest: removed.manifestDigest))
        for digest in [removed.manifestDigest, removed.configDigest] where !index.values.contains(where: { $0.configDigest == digest }) {
            try? FileManager.default.removeItem(atPath: blobPath(digest))
        }
    }

    // MARK: - Import steps

    private func store(_ image: SourceImage, as reference: ImageReference, staging: String) async throws -> StoredImage {
        for blob in [image.config] + image.layers { try Self.verify(blob) }
        let configData = try Data(contentsOf: URL(fileURLWithPath: image.config.path))
        let config = try Self.runtimeConfig(configData)
        let manifest = image.manifest ?? Data("\(image.config.digest ?? "")\n\(image.layers.map { $0.digest ?? "" }.joined(separator: "\n"))".utf8)
        let manifestDigest = image.manifestDigest ?? Self.digest(of: manifest)
        let configDigest = image.config.digest ?? Self.digest(of: configData)
        let layerDigests = try image.layers.map { try $0.digest ?? Self.digest(ofFile: $0.path) }
        let target = rootfs(manifestDigest: manifestDigest)
        if access(target, F_OK) != 0 {
            let unpacking = (staging as NSString).appendingPathComponent("rootfs")
            try FileManager.default.createDirectory(atPath: unpacking, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            for layer in image.layers { try await LayerUnpacker(tar: tar).apply(layer, to: unpacking) }
            try Self.prepareMountPoints(unpacking)
            try FileManager.default.createDirectory(atPath: rootfsDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            guard rename(unpacking, target) == 0 || access(target, F_OK) == 0 else {
                throw RuntimeError(code: .image, message: "cannot move the unpacked image to \(target): \(String(cString: strerror(errno)))")
            }
        }
        try write(manifest, to: blobPath(manifestDigest))
        try write(configData, to: blobPath(configDigest))
        let size = image.layers.reduce(Int64(0)) { total, layer in
            total + ((try? FileManager.default.attributesOfItem(atPath: layer.path)[.size] as? Int64) ?? 0)
        }
        let stored = StoredImage(name: reference.description, manifestDigest: manifestDigest, configDigest: configDigest, layers: layerDigests,
                                 size: size, importedAt: Date().formatted(.iso8601), config: config)
        var index = try loadIndex()
        let replaced = index[reference.description]
        index[reference.description] = stored
        try saveIndex(index)
        // A name that pointed at another image no longer keeps that image's files.
        if let replaced, replaced.manifestDigest != manifestDigest, !index.values.contains(where: { $0.manifestDigest == replaced.manifestDigest }) {
            try? FileManager.default.removeItem(atPath: rootfs(manifestDigest: replaced.manifestDigest))
        }
        return stored
    }

    /// Creates what runc mounts over, so a read-only root needs no change at container start.
    static func prepareMountPoints(_ root: String) throws {
        for directory in ["proc", "sys", "dev", "tmp", "run", "etc"] {
            let path = (root as NSString).appendingPathComponent(directory)
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            }
        }
        for file in ["etc/resolv.conf", "etc/hosts"] {
            let path = (root as NSString).appendingPathComponent(file)
            if !FileManager.default.fileExists(atPath: path) {
                let contents = file == "etc/hosts" ? "127.0.0.1\tlocalhost\n::1\tlocalhost\n" : ""
                guard FileManager.default.createFile(atPath: path, contents: Data(contents.utf8), attributes: [.posixPermissions: 0o644]) else {
                    throw RuntimeError(code: .image, message: "cannot create \(path), which containers mount over")
                }
            }
        }
    }

    /// Checks that a blob's file hashes to its digest.
    static func verify(_ blob: SourceImage.Blob) throws {
        guard let expected = blob.digest else { return }
        guard expected.hasPrefix("sha256:") else {
            throw RuntimeError(code: .image, message: "blob \(expected): only sha256 digests are supported")
        }
        let actual = try digest(ofFile: blob.path)
        guard actual == expected else {
            throw RuntimeError(code: .image, message: "blob \(blob.path) does not match its digest: expected \(expected), got \(actual); the file is corrupt or was changed — nothing was imported")
        }
    }

    static func runtimeConfig(_ data: Data) throws -> ImageRuntimeConfig {
        struct ImageConfigFile: Decodable { var config: ImageRuntimeConfig? }
        do {
            return try JSONDecoder().decode(ImageConfigFile.self, from: data).config ?? ImageRuntimeConfig()
        } catch {
            throw RuntimeError(code: .image, message: "the image config is not valid JSON of an OCI image config: \(error)")
        }
    }

    /// `sha256:<hex>` of `data`.
    public static func digest(of data: Data) -> String {
        "sha256:" + SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// `sha256:<hex>` of a file's content, read in chunks.
    public static func digest(ofFile path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw RuntimeError(code: .image, message: "cannot read \(path)")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return "sha256:" + hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    static func hex(_ digest: String) -> String {
        digest.hasPrefix("sha256:") ? String(digest.dropFirst("sha256:".count)) : digest
    }

    private func blobPath(_ digest: String) -> String {
        (directory as NSString).appendingPathComponent("blobs/sha256/\(Self.hex(digest))")
    }

    private func write(_ data: Data, to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    private func loadIndex() throws -> [String: StoredImage] {
        guard let data = FileManager.default.contents(atPath: indexPath) else { return [:] }
        do {
            return try JSONDecoder().decode([String: StoredImage].self, from: data)
        } catch {
            throw RuntimeError(code: .image, message: "cannot read the image index \(indexPath): \(error); import the images again after removing it")
        }
    }

    private func saveIndex(_ index: [String: StoredImage]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try write(try encoder.encode(index), to: indexPath)
    }
}
