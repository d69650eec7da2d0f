import Foundation
import Testing
import TestSupport

/// Real skopeo and curl, through Portcullis, against a real docker-registry 2.8.2.
@Suite("skopeo and curl through Portcullis against registry 2.8.2")
struct SkopeoThroughPortcullisTests {
    @Test("push, inspect, list tags, cross-repository copy and delete by digest all succeed, and storage holds exactly what was pushed")
    func pushInspectListCopyDelete() async throws {
        let deployment = try await SharedDeployment.get()
        let (layout, image) = try writeImage(named: "app", content: "alice app")
        let creds = deployment.credentials("alice")

        let push = try await deployment.push(layout, credentials: creds, to: "alice/app:v1")
        #expect(push.succeeded, "\(push)")

        let inspect = try await deployment.skopeo(["inspect", "--raw", "--tls-verify=false", "--creds", creds, "docker://\(deployment.host)/alice/app:v1"])
        #expect(inspect.succeeded, "\(inspect)")
        #expect(inspect.standardOutput.contains(image.configDigest))

        let tags = try await deployment.skopeo(["list-tags", "--tls-verify=false", "--creds", creds, "docker://\(deployment.host)/alice/app"])
        #expect(tags.succeeded, "\(tags)")
        #expect(tags.standardOutput.contains("\"v1\""))

        let copy = try await deployment.skopeo([
            "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds", creds, "--dest-creds", creds,
            "docker://\(deployment.host)/alice/app:v1", "docker://\(deployment.host)/alice/other:v1",
        ])
        #expect(copy.succeeded, "\(copy)")

        // Storage: every pushed blob exists once, and both repositories link the layers.
        let blobs = deployment.storage + "/blobs/sha256"
        for digest in [image.manifestDigest, image.configDigest] + image.layerDigests {
            let hex = String(digest.dropFirst("sha256:".count))
            #expect(FileManager.default.fileExists(atPath: "\(blobs)/\(hex.prefix(2))/\(hex)/data"), "blob \(digest) missing")
            for repository in ["alice/app", "alice/other"] where digest != image.manifestDigest {
                #expect(
                    FileManager.default.fileExists(atPath: "\(deployment.storage)/repositories/\(repository)/_layers/sha256/\(hex)/link"),
                    "\(repository) does not link \(digest)")
            }
        }
        #expect(deployment.registryLog.contains("alice/other") && deployment.registryLog.contains("mount"), "the copy to alice/other did not mount blobs across repositories")

        let delete = try await deployment.skopeo(["delete", "--tls-verify=false", "--creds", creds, "docker://\(deployment.host)/alice/app@\(image.manifestDigest)"])
        #expect(delete.succeeded, "\(delete)")
        let gone = try await deployment.skopeo(["inspect", "--tls-verify=false", "--creds", creds, "docker://\(deployment.host)/alice/app:v1"])
        #expect(!gone.succeeded, "the tag still resolves after deleting its manifest")
        let otherStillThere = try await deployment.skopeo(["inspect", "--raw", "--tls-verify=false", "--creds", creds, "docker://\(deployment.host)/alice/other:v1"])
        #expect(otherStillThere.succeeded, "\(otherStillThere)")
    }

    @Test("behind a registry that redirects blob downloads (its redirect storage middleware), the client gets the registry's 307 and Location unchanged, Portcullis never follows it, and skopeo pulls through it")
    func redirectedBlobDownloads() async throws {
        let storePort = try freeLoopbackPort()
        let deployment = try await Deployment.start(
            users: ["alice": "alice-secret"], rules: #"  - {account: "*", name: "${account}/**", actions: [pull, push, delete]}"#,
            registryConfiguration: "middleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: http://127.0.0.1:\(storePort)/")
        defer { deployment.stop() }
        // The blob store the registry redirects to: its own storage directory, served over HTTP.
        guard let python = which("python3") else { throw HarnessError("python3 is not installed") }
        let store = try ServiceProcess(
            python, ["-m", "http.server", "--bind", "127.0.0.1", "--directory", deployment.directory + "/registry/data", String(storePort)],
            logPath: deployment.directory + "/blob-store.log")
        defer { store.stop() }
        try await waitUntilAnswering("http://127.0.0.1:\(storePort)/")

        let (layout, image) = try writeImage(named: "redirected", content: "a redirected layer")
        defer { try? FileManager.default.removeItem(atPath: layout) }
        let creds = deployment.credentials("alice")
        let push = try await deployment.push(layout, credentials: creds, to: "alice/redirected:v1")
        #expect(push.succeeded, "\(push)")

        let layer = try #require(image.layerDigests.first)
        let hex = String(layer.dropFirst("sha256:".count))
        let answer = try await deployment.curl(["-s", "-i", "-u", creds], path: "/v2/alice/redirected/blobs/\(layer)")
        let head = answer.standardOutput.components(separatedBy: "\r\n\r\n")[0].split(separator: "\r\n")
        #expect(head.first?.hasPrefix("HTTP/1.1 307") == true, "\(answer)")
        let location = head.first { $0.lowercased().hasPrefix("location:") }?.dropFirst("location:".count).trimmingCharacters(in: .whitespaces)
        #expect(location == "http://127.0.0.1:\(storePort)/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data", "\(answer)")
        // Had Portcullis followed it, the store would have logged the request before curl had an answer.
        #expect(!store.log.contains(hex), "Portcullis followed the redirect itself:\n\(store.log)")

        let pulled = FileManager.default.temporaryDirectory.appendingPathComponent("oci-pulled-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: pulled) }
        let pull = try await deployment.skopeo(["copy", "--preserve-digests", "--src-tls-verify=false", "--src-creds", creds, "docker://\(deployment.host)/alice/redirected:v1", "oci:\(pulled):v1"])
        #expect(pull.succeeded, "\(pull)")
        #expect(FileManager.default.fileExists(atPath: "\(pulled)/blobs/sha256/\(hex)"), "the pulled layout lacks the layer")
        #expect(await store.log(once: { $0.contains("GET /docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data") }).contains(hex), "skopeo did not fetch the layer from the blob store")
    }

    @Test("a pull-only account cannot push (the registry never sees the upload), cannot delete, and cannot read another account's repository")
    func pullOnlyAccountIsConfined() async throws {
        let deployment = try await SharedDeployment.get()
        let (layout, image) = try writeImage(named: "confined", content: "alice confined")
        let push = try await deployment.push(layout, credentials: deployment.credentials("alice"), to: "alice/confined:v1")
        #expect(push.succeeded, "\(push)")

        let readerPull = try await deployment.skopeo(["inspect", "--raw", "--tls-verify=false", "--creds", deployment.credentials("reader"), "docker://\(deployment.host)/alice/confined:v1"])
        #expect(readerPull.succeeded, "reader should pull alice/confined: \(readerPull)")

        let (otherLayout, _) = try writeImage(named: "readerpush", content: "reader push")
        let readerPush = try await deployment.push(otherLayout, credentials: deployment.credentials("reader"), to: "alice/readerpush:v1")
        #expect(!readerPush.succeeded, "reader pushed: \(readerPush)")
        #expect(!FileManager.default.fileExists(atPath: deployment.storage + "/repositories/alice/readerpush"), "the registry received an upload from a pull-only account")

        let readerDelete = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE", "-u", deployment.credentials("reader")], path: "/v2/alice/confined/manifests/\(image.manifestDigest)")
        #expect(readerDelete.standardOutput == "401")
        let stillThere = try await deployment.skopeo(["inspect", "--raw", "--tls-verify=false", "--creds", deployment.credentials("alice"), "docker://\(deployment.host)/alice/confined:v1"])
        #expect(stillThere.succeeded)

        let bobReads = try await deployment.skopeo(["inspect", "--raw", "--tls-verify=false", "--creds", deployment.credentials("bob"), "docker://\(deployment.host)/alice/confined:v1"])
        #expect(!bobReads.succeeded, "bob read alice's repository")
    }

    @Test("anonymous callers pull public/… and nothing else")
    func anonymousPullsPublicOnly() async throws {
        let deployment = try await SharedDeployment.get()
        let (layout, _) = try writeImage(named: "public", content: "public app")
        let push = try await deployment.push(layout, credentials: deployment.credentials("admin"), to: "public/app:v1")
        #expect(push.succeeded, "\(push)")
        let (privateLayout, _) = try writeImage(named: "private", content: "private app")
        let pushPrivate = try await deployment.push(privateLayout, credentials: deployment.credentials("admin"), to: "admin/app:v1")
        #expect(pushPrivate.succeeded, "\(pushPrivate)")

        let anonymousPublic = try await deployment.skopeo(["inspect", "--raw", "--tls-verify=false", "--no-creds", "docker://\(deployment.host)/public/app:v1"])
        #expect(anonymousPublic.succeeded, "\(anonymousPublic)")
        let anonymousPrivate = try await deployment.skopeo(["inspect", "--raw", "--tls-verify=false", "--no-creds", "docker://\(deployment.host)/admin/app:v1"])
        #expect(!anonymousPrivate.succeeded)
        let (pushLayout, _) = try writeImage(named: "anonpush", content: "anonymous push")
        let anonymousPush = try await deployment.skopeo(["copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-no-creds", "oci:\(pushLayout):v1", "docker://\(deployment.host)/public/anon:v1"])
        #expect(!anonymousPush.succeeded)
    }

    @Test("the catalog answers the admin in full, gives alice only what she may pull, and refuses bob whose rule denies the catalog")
    func catalogIsForAdminOnly() async throws {
        let deployment = try await SharedDeployment.get()
        let (layout, _) = try writeImage(named: "catalog", content: "catalog entry")
        let push = try await deployment.push(layout, credentials: deployment.credentials("alice"), to: "alice/catalogued:v1")
        #expect(push.succeeded, "\(push)")
        let pushAdmin = try await deployment.push(layout, credentials: deployment.credentials("admin"), to: "admin/catalogued:v1")
        #expect(pushAdmin.succeeded, "\(pushAdmin)")

        let admin = try await deployment.curl(["-u", deployment.credentials("admin")], path: "/v2/_catalog")
        #expect(admin.standardOutput.contains("alice/catalogued") && admin.standardOutput.contains("admin/catalogued"), "\(admin)")

        let alice = try await deployment.curl(["-u", deployment.credentials("alice")], path: "/v2/_catalog")
        let listed = try JSONSerialization.jsonObject(with: Data(alice.standardOutput.utf8)) as? [String: [String]]
        let repositories = try #require(listed?["repositories"], "\(alice)")
        #expect(repositories.contains("alice/catalogued"))
        #expect(repositories.allSatisfy { $0.hasPrefix("alice/") }, "alice sees repositories she may not pull: \(repositories)")

        let bob = try await deployment.curl(["-i", "-u", deployment.credentials("bob")], path: "/v2/_catalog")
        #expect(bob.standardOutput.hasPrefix("HTTP/1.1 401"), "\(bob)")
        #expect(bob.standardOutput.lowercased().contains(#"scope="registry:catalog:*""#), "\(bob)")
        #expect(bob.standardOutput.contains(#""code":"UNAUTHORIZED""#))
    }

    @Test("curl with Basic credentials lists tags, and the README's token + DELETE sequence deletes a tag's manifest")
    func curlBasicAndTokenDelete() async throws {
        let deployment = try await SharedDeployment.get()
        let (layout, image) = try writeImage(named: "curl", content: "curl app")
        let push = try await deployment.push(layout, credentials: deployment.credentials("alice"), to: "alice/curl:v1")
        #expect(push.succeeded, "\(push)")

        let tags = try await deployment.curl(["-u", deployment.credentials("alice")], path: "/v2/alice/curl/tags/list")
        #expect(tags.standardOutput == #"{"name":"alice/curl","tags":["v1"]}"# + "\n", "\(tags)")

        let tokenResponse = try await deployment.curl(["-u", deployment.credentials("alice")], path: "/token?service=portcullis&scope=repository:alice/curl:pull,push,delete")
        let json = try JSONSerialization.jsonObject(with: Data(tokenResponse.standardOutput.utf8)) as? [String: Any]
        let token = try #require(json?["token"] as? String, "\(tokenResponse)")
        #expect(json?["access_token"] as? String == token)
        #expect(json?["expires_in"] as? Int == 300)

        let head = try await deployment.curl(["-I", "-H", "Authorization: Bearer \(token)", "-H", "Accept: application/vnd.oci.image.manifest.v1+json"], path: "/v2/alice/curl/manifests/v1")
        #expect(head.standardOutput.lowercased().contains("docker-content-digest: \(image.manifestDigest)"), "\(head)")

        let delete = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE", "-H", "Authorization: Bearer \(token)"], path: "/v2/alice/curl/manifests/\(image.manifestDigest)")
        #expect(delete.standardOutput == "202")
        let after = try await deployment.curl(["-o", "/dev/null", "-w", "%{http_code}", "-u", deployment.credentials("alice")], path: "/v2/alice/curl/manifests/v1")
        #expect(after.standardOutput == "404")
    }
}
