import Foundation
import Testing
import WeftCore
@testable import WeftRuntime

/// OCI image layouts built here from small files with tar, imported into a store in a temporary directory.
@Suite("The image store of the oci driver")
struct ImageStoreTests {
    final class Scratch {
        let path = NSTemporaryDirectory() + "weft-images-\(UUID().uuidString)"
        init() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        func sub(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
    }

    /// Writes files (path → content; nil makes a directory) into a directory and tars it (gzip when asked).
    private func layer(_ files: [String: String?], in scratch: Scratch, name: String, gzip: Bool) throws -> String {
        let directory = scratch.sub("src-\(name)")
        for (path, content) in files.sorted(by: { $0.key < $1.key }) {
            let full = (directory as NSString).appendingPathComponent(path)
            if let content {
                try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try content.write(toFile: full, atomically: false, encoding: .utf8)
            } else {
                try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: true)
            }
        }
        let output = scratch.sub("\(name).tar" + (gzip ? ".gz" : ""))
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
        tar.arguments = ["-c" + (gzip ? "z" : "") + "f", output, "-C", directory, "."]
        try tar.run()
        tar.waitUntilExit()
        #expect(tar.terminationStatus == 0)
        return output
    }

    /// An OCI layout directory with `layers` (files) in order; returns it.
    private func layout(_ layers: [String], in scratch: Scratch, name: String = "test/app:1",
                        config: String = #"{"config":{"Entrypoint":["/bin/app"],"Cmd":["--serve"],"Env":["MODE=image"],"WorkingDir":"/srv","User":"1000:1000"}}"#) throws -> String {
        let directory = scratch.sub("layout")
        let blobs = (directory as NSString).appendingPathComponent("blobs/sha256")
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        func add(_ data: Data) throws -> (String, Int) {
            let digest = ImageStore.digest(of: data)
            try data.write(to: URL(fileURLWithPath: (blobs as NSString).appendingPathComponent(String(digest.dropFirst(7)))))
            return (digest, data.count)
        }
        let (configDigest, configSize) = try add(Data(config.utf8))
        var descriptors: [String] = []
        for path in layers {
            let (digest, size) = try add(try Data(contentsOf: URL(fileURLWithPath: path)))
            descriptors.append(#"{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\#(digest)","size":\#(size)}"#)
        }
        let manifest = #"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(configDigest)","size":\#(configSize)},"layers":[\#(descriptors.joined(separator: ","))]}"#
        let (manifestDigest, manifestSize) = try add(Data(manifest.utf8))
        try #"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(manifestDigest)","size":\#(manifestSize),"annotations":{"org.opencontainers.image.ref.name":"\#(name)"}}]}"#
            .write(toFile: (directory as NSString).appendingPathComponent("index.json"), atomically: true, encoding: .utf8)
        try #"{"imageLayoutVersion":"1.0.0"}"#.write(toFile: (directory as NSString).appendingPathComponent("oci-layout"), atomically: true, encoding: .utf8)
        return directory
    }

    @Test func importAppliesLayersInOrderWithWhiteoutsAndRecordsTheConfig() async throws {
        let scratch = try Scratch()
        let base = try layer(["bin/app": "v1", "etc/keep": "k", "etc/gone": "g", "var/cache/a": "1", "var/cache/b": "2"], in: scratch, name: "base", gzip: true)
        let top = try layer(["bin/app": "v2", "etc/.wh.gone": "", "var/cache/.wh..wh..opq": "", "var/cache/c": "3"], in: scratch, name: "top", gzip: false)
        let store = ImageStore(directory: scratch.sub("store"))
        let imported = try await store.importImages(from: try layout([base, top], in: scratch))
        let image = try #require(imported.first)
        #expect(image.name == "test/app:1" && image.layers.count == 2)
        #expect(image.config == ImageRuntimeConfig(entrypoint: ["/bin/app"], cmd: ["--serve"], env: ["MODE=image"], workingDir: "/srv", user: "1000:1000"))
        let root = store.rootfs(manifestDigest: image.manifestDigest)
        func read(_ path: String) -> String? { try? String(contentsOfFile: (root as NSString).appendingPathComponent(path), encoding: .utf8) }
        #expect(read("bin/app") == "v2")
        #expect(read("etc/keep") == "k")
        #expect(read("etc/gone") == nil, "a whiteout deletes the lower layer's file")
        #expect(read("var/cache/a") == nil && read("var/cache/b") == nil && read("var/cache/c") == "3", "an opaque directory hides the lower layer's entries")
        #expect(!FileManager.default.fileExists(atPath: (root as NSString).appendingPathComponent("etc/.wh.gone")))
        #expect(FileManager.default.fileExists(atPath: (root as NSString).appendingPathComponent("proc")))
        #expect(try store.image(ImageReference("test/app:1")!).manifestDigest == image.manifestDigest)
        #expect(try store.list().map(\.name) == ["test/app:1"])
    }

    @Test func aTarOfTheLayoutImportsUnderAGivenName() async throws {
        let scratch = try Scratch()
        let directory = try layout([try layer(["bin/app": "x"], in: scratch, name: "only", gzip: true)], in: scratch)
        let archive = scratch.sub("image.tar")
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
        tar.arguments = ["-cf", archive, "-C", directory, "."]
        try tar.run()
        tar.waitUntilExit()
        let store = ImageStore(directory: scratch.sub("store"))
        let imported = try await store.importImages(from: archive, name: ImageReference("renamed:v2"))
        #expect(imported.map(\.name) == ["renamed:v2"])
        try store.remove(ImageReference("renamed:v2")!)
        #expect(try store.list().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: store.rootfs(manifestDigest: imported[0].manifestDigest)))
    }

    @Test func aCorruptLayerIsRefusedAndNothingIsRecorded() async throws {
        let scratch = try Scratch()
        let directory = try layout([try layer(["bin/app": "x"], in: scratch, name: "l", gzip: true)], in: scratch)
        // Change one layer blob after its digest was written into the manifest.
        let blobs = (directory as NSString).appendingPathComponent("blobs/sha256")
        let store = ImageStore(directory: scratch.sub("store"))
        for blob in try FileManager.default.contentsOfDirectory(atPath: blobs) {
            let path = (blobs as NSString).appendingPathComponent(blob)
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            if data.starts(with: [0x1f, 0x8b]) { try (data + Data([0])).write(to: URL(fileURLWithPath: path)) }
        }
        await #expect {
            try await store.importImages(from: directory)
        } throws: { error in
            "\(error)".contains("does not match its digest") && "\(error)".contains("nothing was imported")
        }
        #expect(try store.list().isEmpty)
        #expect(throws: RuntimeError.self) { try store.image(ImageReference("test/app:1")!, node: "n1") }
        do {
            _ = try store.image(ImageReference("test/app:1")!, node: "n1")
        } catch {
            #expect("\(error)".contains("image \"test/app:1\" not found on node n1; import it with weft image import"))
        }
    }

    @Test func aDockerSaveDirectoryImportsWithItsRepoTag() async throws {
        let scratch = try Scratch()
        let directory = scratch.sub("docker")
        let layerTar = try layer(["bin/tool": "t"], in: scratch, name: "d", gzip: false)
        try FileManager.default.createDirectory(atPath: directory + "/0123abcd", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: layerTar, toPath: directory + "/0123abcd/layer.tar")
        let config = Data(#"{"config":{"Cmd":["/bin/tool"]}}"#.utf8)
        let configName = String(ImageStore.digest(of: config).dropFirst(7)) + ".json"
        try config.write(to: URL(fileURLWithPath: directory + "/" + configName))
        try #"[{"Config":"\#(configName)","RepoTags":["tools/t:3"],"Layers":["0123abcd/layer.tar"]}]"#
            .write(toFile: directory + "/manifest.json", atomically: true, encoding: .utf8)
        let store = ImageStore(directory: scratch.sub("store"))
        let image = try #require(try await store.importImages(from: directory).first)
        #expect(image.name == "tools/t:3" && image.config.cmd == ["/bin/tool"])
        #expect(try String(contentsOfFile: store.rootfs(manifestDigest: image.manifestDigest) + "/bin/tool", encoding: .utf8) == "t")
        // A config whose content no longer matches the digest in its name is refused.
        try Data(#"{"config":{}}"#.utf8).write(to: URL(fileURLWithPath: directory + "/" + configName))
        await #expect(throws: RuntimeError.self) { try await store.importImages(from: directory, name: ImageReference("tools/t:4")) }
    }

    @Test func aWhiteoutBelowASymlinkDeletesNothingOutside() throws {
        let scratch = try Scratch()
        let root = scratch.sub("root"), outside = scratch.sub("outside")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try "precious".write(toFile: outside + "/file", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root + "/escape", withDestinationPath: outside)
        try LayerUnpacker.applyWhiteout("./escape/.wh.file", root: root)
        #expect(FileManager.default.fileExists(atPath: outside + "/file"))
        #expect(throws: RuntimeError.self) { try LayerUnpacker.applyWhiteout("a/../../.wh.x", root: root) }
    }

    @Test(arguments: ["shop/cart", "shop/cart:1.2", "a.b-c_d/e:latest", "x:Tag_1.0-rc"])
    func imageNames(_ text: String) {
        #expect(ImageReference.problem(text) == nil)
        #expect(ImageReference(text) != nil)
    }

    @Test func imageNameParts() {
        #expect(ImageReference("shop/cart")?.description == "shop/cart:latest")
        #expect(ImageReference("shop/cart:1.2")?.tag == "1.2")
        for bad in ["", "Shop/cart", "shop//cart", "shop/cart:", "shop/cart:-x", "-shop", "shop@sha256:abc"] {
            #expect(ImageReference.problem(bad) != nil, "\(bad)")
        }
    }
}
