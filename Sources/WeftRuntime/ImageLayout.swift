import Foundation
import WeftCore

/// The images of a directory on disk: an OCI image layout (`oci-layout`, `index.json`, `blobs/`), or
/// what `docker save` writes (`manifest.json` naming configs and layer tars).
public struct LocalImageSource: ImageSource {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    struct Descriptor: Decodable {
        var mediaType: String?
        var digest: String
        var size: Int64?
        var annotations: [String: String]?
        var platform: Platform?
    }

    struct Platform: Decodable {
        var architecture: String?
        var os: String?
    }

    struct Index: Decodable {
        var manifests: [Descriptor]
    }

    struct Manifest: Decodable {
        var mediaType: String?
        var config: Descriptor?
        var layers: [Descriptor]?
        var manifests: [Descriptor]?
    }

    struct DockerManifest: Decodable {
        var Config: String
        var RepoTags: [String]?
        var Layers: [String]
    }

    public func images() throws -> [SourceImage] {
        if FileManager.default.fileExists(atPath: path("index.json")) { return try layoutImages() }
        if FileManager.default.fileExists(atPath: path("manifest.json")) { return try dockerImages() }
        throw RuntimeError(code: .image, message: "\(directory) is neither an OCI image layout (no index.json) nor a docker save archive (no manifest.json)")
    }

    private func path(_ relative: String) -> String { (directory as NSString).appendingPathComponent(relative) }

    private func decode<T: Decodable>(_ type: T.Type, at relative: String, what: String) throws -> T {
        guard let data = FileManager.default.contents(atPath: path(relative)) else {
            throw RuntimeError(code: .image, message: "cannot read \(what) \(relative) in \(directory)")
        }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw RuntimeError(code: .image, message: "\(what) \(relative) in \(directory) is not valid: \(error)")
        }
    }

    /// The file of blob `digest`, refusing digests that are not `sha256:<64 hex>` (they name paths).
    private func blobPath(_ digest: String) throws -> String {
        let hex = digest.hasPrefix("sha256:") ? digest.dropFirst(7) : ""
        guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw RuntimeError(code: .image, message: "digest \"\(digest)\" is not sha256:<64 lowercase hex digits>; only sha256 is supported")
        }
        let file = path("blobs/sha256/\(hex)")
        guard FileManager.default.fileExists(atPath: file) else {
            throw RuntimeError(code: .image, message: "blob \(digest) is missing from \(directory)/blobs/sha256")
        }
        return file
    }

    private func layoutImages() throws -> [SourceImage] {
        let index = try decode(Index.self, at: "index.json", what: "the index")
        var result: [SourceImage] = []
        for descriptor in index.manifests {
            let name = descriptor.annotations?["io.containerd.image.name"] ?? descriptor.annotations?["org.opencontainers.image.ref.name"]
            result.append(try image(descriptor, name: name, depth: 0))
        }
        return result
    }

    /// The image of a manifest descriptor; an image index in its place is resolved to its linux/amd64
    /// (or only) manifest.
    private func image(_ descriptor: Descriptor, name: String?, depth: Int) throws -> SourceImage {
        let file = try blobPath(descriptor.digest)
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        let actual = ImageStore.digest(of: data)
        guard actual == descriptor.digest else {
            throw RuntimeError(code: .image, message: "manifest \(descriptor.digest) does not match its digest (got \(actual)); the file is corrupt — nothing was imported")
        }
        let manifest: Manifest
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: data)
        } catch {
            throw RuntimeError(code: .image, message: "manifest \(descriptor.digest) is not valid JSON: \(error)")
        }
        if let children = manifest.manifests {
            guard depth == 0 else { throw RuntimeError(code: .image, message: "manifest \(descriptor.digest): nested image indexes are not supported") }
            let linux = children.filter { $0.platform == nil || ($0.platform?.os == "linux" && ["amd64", "x86_64"].contains($0.platform?.architecture ?? "")) }
            guard let chosen = linux.first else {
                throw RuntimeError(code: .image, message: "image index \(descriptor.digest) has no linux/amd64 manifest")
            }
            return try image(chosen, name: name, depth: depth + 1)
        }
        guard let config = manifest.config, let layers = manifest.layers else {
            throw RuntimeError(code: .image, message: "manifest \(descriptor.digest) has no config or no layers")
        }
        return SourceImage(name: name, manifestDigest: descriptor.digest, manifest: data,
                           config: .init(digest: config.digest, path: try blobPath(config.digest), mediaType: config.mediaType),
                           layers: try layers.map { .init(digest: $0.digest, path: try blobPath($0.digest), mediaType: $0.mediaType) })
    }

    private func dockerImages() throws -> [SourceImage] {
        let entries = try decode([DockerManifest].self, at: "manifest.json", what: "the docker manifest")
        return try entries.map { entry in
            SourceImage(name: entry.RepoTags?.first, manifestDigest: nil, manifest: nil,
                        config: try dockerBlob(entry.Config), layers: try entry.Layers.map(dockerBlob))
        }
    }

    /// A file named in a docker manifest; its digest comes from its name where the name is one
    /// (`blobs/sha256/<hex>`, `<hex>.json`), else it is computed.
    private func dockerBlob(_ relative: String) throws -> SourceImage.Blob {
        guard !relative.hasPrefix("/"), !relative.split(separator: "/").contains("..") else {
            throw RuntimeError(code: .image, message: "manifest.json names \"\(relative)\", outside the archive")
        }
        let file = path(relative)
        guard FileManager.default.fileExists(atPath: file) else {
            throw RuntimeError(code: .image, message: "manifest.json names \(relative), which is missing from the archive")
        }
        let base = ((relative as NSString).lastPathComponent as NSString).deletingPathExtension
        let named = base.count == 64 && base.allSatisfy { $0.isHexDigit && !$0.isUppercase } && (relative.hasPrefix("blobs/sha256/") || relative.hasSuffix(".json"))
        return .init(digest: named ? "sha256:\(base)" : nil, path: file, mediaType: nil)
    }
}

/// Applies one layer tar (plain or gzip) on top of a root filesystem directory: its whiteouts
/// (`.wh.NAME` deletes NAME of lower layers, `.wh..wh..opq` empties its directory) first, then its files.
struct LayerUnpacker {
    let tar: ToolCommand

    static let whiteoutPrefix = ".wh."
    static let opaqueMarker = ".wh..wh..opq"

    func apply(_ layer: SourceImage.Blob, to root: String) async throws {
        let compression = try Self.compressionFlag(layer.path)
        let listing = try await tar.run(["-t", compression, "-f", layer.path].compactMap { $0 }, timeout: .seconds(600), outputLimit: 256 << 20)
        for entry in listing.split(separator: "\n").map(String.init) {
            try Self.applyWhiteout(entry, root: root)
        }
        try await tar.run(["-x", compression, "-f", layer.path, "-C", root, "--numeric-owner", "--exclude=\(Self.whiteoutPrefix)*"].compactMap { $0 },
                          timeout: .seconds(600))
    }

    /// `-z` for a gzip file, nil for a plain tar; zstd and others are refused.
    static func compressionFlag(_ path: String) throws -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw RuntimeError(code: .image, message: "cannot read layer \(path)") }
        defer { try? handle.close() }
        let magic = [UInt8]((try? handle.read(upToCount: 4)) ?? Data())
        if magic.starts(with: [0x1f, 0x8b]) { return "-z" }
        if magic.starts(with: [0x28, 0xb5, 0x2f, 0xfd]) {
            throw RuntimeError(code: .image, message: "layer \(path) is zstd-compressed, which this version does not unpack; export the image with gzip layers")
        }
        return nil
    }

    /// Deletes what the whiteout `entry` (a path in the layer) hides; other entries are left alone.
    static func applyWhiteout(_ entry: String, root: String) throws {
        var relative = entry
        while relative.hasPrefix("./") { relative.removeFirst(2) }
        while relative.hasPrefix("/") { relative.removeFirst() }
        let components = relative.split(separator: "/").map(String.init)
        guard let base = components.last, base.hasPrefix(whiteoutPrefix) else { return }
        guard !components.contains("..") else {
            throw RuntimeError(code: .image, message: "layer entry \"\(entry)\" leaves the root filesystem")
        }
        let parent = components.dropLast().joined(separator: "/")
        let parentPath = parent.isEmpty ? root : (root as NSString).appendingPathComponent(parent)
        // A whiteout below a symbolic link would delete outside the image.
        guard try isInside(parentPath, root: root) else { return }
        if base == opaqueMarker {
            for child in (try? FileManager.default.contentsOfDirectory(atPath: parentPath)) ?? [] {
                try FileManager.default.removeItem(atPath: (parentPath as NSString).appendingPathComponent(child))
            }
        } else {
            let hidden = (parentPath as NSString).appendingPathComponent(String(base.dropFirst(whiteoutPrefix.count)))
            var status = stat()
            if lstat(hidden, &status) == 0 { try FileManager.default.removeItem(atPath: hidden) }
        }
    }

    /// Whether `path` exists and resolves (following symbolic links) to `root` or below it.
    private static func isInside(_ path: String, root: String) throws -> Bool {
        guard let resolvedRoot = realpath(root, nil) else { return false }
        defer { free(resolvedRoot) }
        guard let resolved = realpath(path, nil) else { return false }
        defer { free(resolved) }
        let rootText = String(cString: resolvedRoot), pathText = String(cString: resolved)
        return pathText == rootText || pathText.hasPrefix(rootText + "/")
    }
}
