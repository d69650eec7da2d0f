import Foundation
import Testing
import TestSupport

/// deploy/k8s as an installation uses it: a copy of the tree with the files the README has users
/// generate, rendered by the real `kubectl kustomize`, and the pods' mounted files written out
/// exactly as the rendered ConfigMaps, Secrets and volumes lay them out. The sidecar topology then
/// runs for real: Debian's `docker-registry` and Portcullis with those very files, and skopeo.
@Suite("deploy/k8s: rendered overlays, the sidecar topology run for real, and check-deploy")
struct DeploySidecarTests {
    // MARK: The sidecar topology, run

    @Test("skopeo pushes and pulls through Portcullis run with the sidecar overlay's Portcullis and registry configuration as the pod mounts them")
    func sidecarPushAndPull() async throws {
        let tree = try InstalledDeployTree(users: ["user": "pass"])
        defer { tree.remove() }  // runs last, after both processes have stopped
        let manifests = try tree.render("overlays/sidecar")
        let pod = try #require(manifests.deployment(named: "portcullis")?.spec?.template?.spec, "the sidecar overlay has no portcullis Deployment")
        let registryContainer = try #require(pod.containers.first { $0.name == "registry" }, "the registry is not a container of Portcullis's pod")
        let gatewayContainer = try #require(pod.containers.first { $0.name == "portcullis" })
        let root = tree.directory + "/pod"
        try PodFiles.write(registryContainer, of: pod, manifests: manifests, under: root)
        try PodFiles.write(gatewayContainer, of: pod, manifests: manifests, under: root)

        // The registry: `registry serve CONFIG` in the pod (image 2.8.3); Debian's build of the same
        // program (distribution 2.8.2) here.
        #expect(registryContainer.command == ["registry"])
        let registryArguments = registryContainer.args ?? []
        #expect(registryArguments.count == 2 && registryArguments.first == "serve", "\(registryArguments)")
        let registryConfigurationPath = root + (registryArguments.last ?? "")
        var registryConfiguration = try String(contentsOfFile: registryConfigurationPath, encoding: .utf8)
        let registrySettings = try yamlValue(registryConfiguration)
        let address = try #require(registrySettings["http.addr"] as? String)
        #expect(address.hasPrefix("127.0.0.1:"), "the sidecar registry must listen on loopback only, not \(address)")
        let rootDirectory = try #require(registrySettings["storage.filesystem.rootdirectory"] as? String)
        let rootCertificateBundle = try #require(registrySettings["auth.token.rootcertbundle"] as? String)

        // Portcullis: `serve --config CONFIG`; its relative paths resolve inside the mount, as in the pod.
        let gatewayArguments = gatewayContainer.args ?? []
        #expect(Array(gatewayArguments.prefix(2)) == ["serve", "--config"], "\(gatewayArguments)")
        let gatewayConfigurationPath = root + (gatewayArguments.last ?? "")
        var gatewayConfiguration = try String(contentsOfFile: gatewayConfigurationPath, encoding: .utf8)
        let gatewaySettings = try yamlValue(gatewayConfiguration)
        let listen = try #require(gatewaySettings["listen"] as? String)
        let publicURL = try #require(gatewaySettings["public_url"] as? String)
        let upstreamURL = try #require(gatewaySettings["upstream.url"] as? String)
        #expect(upstreamURL == "http://\(address)", "Portcullis's upstream \(upstreamURL) is not where the registry listens (\(address))")

        // What must differ on a test machine, and nothing else:
        // - ports: the registry's http.addr and Portcullis's listen, public_url and upstream.url
        //   get free loopback ports (listen 0.0.0.0 becomes 127.0.0.1 so the test exposes nothing);
        // - public_url becomes http://127.0.0.1:PORT, because the registry's Location headers are
        //   derived from it and skopeo must be able to follow them;
        // - the registry's absolute paths (rootdirectory, rootcertbundle) get the directory that
        //   stands for the pod's filesystem as a prefix.
        // The registry's realm stays https://registry.example.com/token: the registry only announces
        // it, and Portcullis, never the registry, answers clients' challenges.
        let registryPort = try freeLoopbackPort()
        var gatewayPort = try freeLoopbackPort()
        while gatewayPort == registryPort { gatewayPort = try freeLoopbackPort() }
        try replaceOnce(in: &registryConfiguration, "addr: \(address)", with: "addr: 127.0.0.1:\(registryPort)")
        try replaceOnce(in: &registryConfiguration, "rootdirectory: \(rootDirectory)", with: "rootdirectory: \(root)\(rootDirectory)")
        try replaceOnce(in: &registryConfiguration, "rootcertbundle: \(rootCertificateBundle)", with: "rootcertbundle: \(root)\(rootCertificateBundle)")
        try replaceOnce(in: &gatewayConfiguration, "listen: \(listen)", with: "listen: 127.0.0.1:\(gatewayPort)")
        try replaceOnce(in: &gatewayConfiguration, "public_url: \(publicURL)", with: "public_url: http://127.0.0.1:\(gatewayPort)")
        try replaceOnce(in: &gatewayConfiguration, "url: \(upstreamURL)", with: "url: http://127.0.0.1:\(registryPort)")
        try Data(registryConfiguration.utf8).write(to: URL(fileURLWithPath: registryConfigurationPath))
        try Data(gatewayConfiguration.utf8).write(to: URL(fileURLWithPath: gatewayConfigurationPath))

        let registry = try ServiceProcess(
            try registryExecutable(), ["serve", registryConfigurationPath], logPath: tree.directory + "/registry.log",
            environment: try PodFiles.environment(of: registryContainer, manifests: manifests))
        defer { registry.stop() }
        try await waitUntilAnswering("http://127.0.0.1:\(registryPort)/v2/", started: registry)
        // As the manifests run it: UID/GID 65532, no capabilities.
        try GatewayUser.handOver(tree.directory)
        let gateway = try ServiceProcess.gateway(
            try portcullisBinary(), ["serve", "--config", gatewayConfigurationPath], logPath: tree.directory + "/portcullis.log")
        defer { gateway.stop() }
        try await waitUntilAnswering("http://127.0.0.1:\(gatewayPort)/healthz", started: gateway)

        // The registry enforces the overlay's auth block by itself.
        let direct = try await Command("curl", ["-s", "-i", "--max-time", "10", "http://127.0.0.1:\(registryPort)/v2/"]).runInBackground()
        #expect(direct.standardOutput.hasPrefix("HTTP/1.1 401"), "\(direct)")
        #expect(direct.standardOutput.contains(#"Bearer realm="https://registry.example.com/token",service="registry""#), "\(direct)")

        // /readyz turns 200 only once the registry accepts a Portcullis token (readiness.interval 10).
        let ready = try await waitForStatus(200, url: "http://127.0.0.1:\(gatewayPort)/readyz", timeout: .seconds(40))
        #expect(ready, "/readyz never answered 200:\n\(gateway.log)\n--- registry ---\n\(registry.log)")

        let layout = tree.directory + "/image"
        let image = try OCIImageLayout.write(
            to: layout, tag: "v1", layers: [["hello.txt": Data("hello from the sidecar overlay\n".utf8)]], label: "sidecar")
        let host = "127.0.0.1:\(gatewayPort)"
        let push = try skopeo([
            "copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", "user:pass", "oci:\(layout):v1", "docker://\(host)/user/app:v1",
        ])
        #expect(push.succeeded, "\(push)\n--- portcullis ---\n\(gateway.log)\n--- registry ---\n\(registry.log)")

        let pulled = tree.directory + "/pulled"
        let pull = try skopeo([
            "copy", "--preserve-digests", "--src-tls-verify=false", "--src-creds", "user:pass", "docker://\(host)/user/app:v1", "oci:\(pulled):v1",
        ])
        #expect(pull.succeeded, "\(pull)")
        let index = (try? String(contentsOfFile: pulled + "/index.json", encoding: .utf8)) ?? ""
        #expect(index.contains(image.manifestDigest), "the pulled image is not the pushed one: \(index)")

        // The registry stored it where the overlay's rootdirectory (the pod's volume) says.
        for digest in image.layerDigests + [image.configDigest] {
            let hex = String(digest.dropFirst("sha256:".count))
            let blob = "\(root)\(rootDirectory)/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data"
            #expect(FileManager.default.fileExists(atPath: blob), "blob \(digest) is not in the overlay's storage")
        }

        let anonymous = try skopeo(["inspect", "--raw", "--tls-verify=false", "--no-creds", "docker://\(host)/user/app:v1"])
        #expect(!anonymous.succeeded, "an anonymous caller read user/app")
    }

    // MARK: Every overlay's configuration, with its pod's files

    @Test(
        "every overlay's Portcullis configuration passes check-config with exactly the files its pod mounts",
        arguments: ["base", "overlays/sidecar", "overlays/lb-backend", "overlays/migration"])
    func portcullisConfigurationIsValid(kustomization: String) throws {
        let tree = try InstalledDeployTree(users: ["alice": "secret"])
        defer { tree.remove() }
        let manifests = try tree.render(kustomization)
        let pod = try #require(manifests.deployment(named: "portcullis")?.spec?.template?.spec)
        let container = try #require(pod.containers.first { $0.name == "portcullis" })
        let root = tree.directory + "/pod"
        try PodFiles.write(container, of: pod, manifests: manifests, under: root)
        let configuration = root + (container.args?.last ?? "")
        let check = try Command(try portcullisBinary(), ["check-config", "--config", configuration]).run()
        #expect(check.succeeded, "\(kustomization): \(check)")
    }

    @Test(
        "each overlay's registry trusts the certificate Portcullis signs with, under the auth.token block registry-config prints for the overlay's Portcullis configuration",
        arguments: ["overlays/sidecar", "overlays/lb-backend", "overlays/migration"])
    func registryTrustsPortcullis(kustomization: String) throws {
        let tree = try InstalledDeployTree(users: ["alice": "secret"])
        defer { tree.remove() }
        let manifests = try tree.render(kustomization)
        let gatewayPod = try #require(manifests.deployment(named: "portcullis")?.spec?.template?.spec)
        let gateway = try #require(gatewayPod.containers.first { $0.name == "portcullis" })
        let registryPod = try #require(
            manifests.deployments.compactMap { $0.spec?.template?.spec }.first { $0.containers.contains { $0.name == "registry" } },
            "\(kustomization) runs no registry container")
        let registry = try #require(registryPod.containers.first { $0.name == "registry" })
        let gatewayRoot = tree.directory + "/gateway-pod"
        let registryRoot = tree.directory + "/registry-pod"
        try PodFiles.write(gateway, of: gatewayPod, manifests: manifests, under: gatewayRoot)
        try PodFiles.write(registry, of: registryPod, manifests: manifests, under: registryRoot)

        let printed = try Command(
            try portcullisBinary(),
            ["registry-config", "--config", gatewayRoot + (gateway.args?.last ?? ""), "--out", tree.directory + "/trust"]
        ).run().checked()
        let expected = try yamlValue(printed.standardOutput)
        let actual = try yamlValue(try String(contentsOfFile: registryRoot + (registry.args?.last ?? ""), encoding: .utf8))
        for key in ["auth.token.realm", "auth.token.service", "auth.token.issuer"] {
            #expect(actual[key] as? String == expected[key] as? String, "\(kustomization): \(key)")
            #expect(actual[key] != nil, "\(kustomization): the registry's config.yml has no \(key)")
        }
        let bundle = try #require(actual["auth.token.rootcertbundle"] as? String)
        let mounted = FileManager.default.contents(atPath: registryRoot + bundle)
        let signingCertificate = FileManager.default.contents(atPath: gatewayRoot + "/etc/portcullis/keys/token.crt")
        #expect(mounted != nil, "\(kustomization): nothing is mounted at the registry's rootcertbundle \(bundle)")
        #expect(mounted == signingCertificate, "\(kustomization): the registry's rootcertbundle is not Portcullis's certificate")
    }

    @Test(
        "the lb-backend topology runs 2+ Portcullis replicas and 2+ registry replicas sharing one REGISTRY_HTTP_SECRET, reachable only from Portcullis pods",
        arguments: ["overlays/lb-backend", "overlays/migration"])
    func loadBalancedBackend(kustomization: String) throws {
        let tree = try InstalledDeployTree(users: ["alice": "secret"])
        defer { tree.remove() }
        let manifests = try tree.render(kustomization)
        let gateway = try #require(manifests.deployment(named: "portcullis"))
        let registry = try #require(manifests.deployment(named: "registry"))
        #expect((gateway.spec?.replicas ?? 1) >= 2)
        #expect((registry.spec?.replicas ?? 1) >= 2)

        let registryContainer = try #require(registry.spec?.template?.spec.containers.first { $0.name == "registry" })
        let secretReference = registryContainer.env?.first { $0.name == "REGISTRY_HTTP_SECRET" }?.valueFrom?.secretKeyRef
        #expect(secretReference != nil, "the registry's http.secret does not come from a Secret")
        let environment = try PodFiles.environment(of: registryContainer, manifests: manifests)
        #expect(environment["REGISTRY_HTTP_SECRET"] == tree.httpSecret, "REGISTRY_HTTP_SECRET is not the installation's secrets/http-secret")

        // Only Portcullis pods may connect to the registry pods.
        let registryLabels = registry.spec?.template?.metadata?.labels ?? [:]
        let gatewayLabels = gateway.spec?.template?.metadata?.labels ?? [:]
        let policies = manifests.filter { $0.kind == "NetworkPolicy" && ($0.spec?.podSelector?.matchLabels ?? [:]).isSubset(of: registryLabels) }
        #expect(!policies.isEmpty, "no NetworkPolicy selects the registry pods")
        for policy in policies {
            #expect(policy.spec?.policyTypes?.contains("Ingress") == true)
            for rule in policy.spec?.ingress ?? [] {
                let peers = rule.from ?? []
                #expect(!peers.isEmpty, "\(policy.metadata.name) lets every pod reach the registry")
                for peer in peers {
                    let selector = peer.podSelector?.matchLabels ?? [:]
                    #expect(!selector.isEmpty && selector.isSubset(of: gatewayLabels), "\(policy.metadata.name) admits \(selector)")
                }
            }
        }

        // Portcullis's upstream is the registry's Service.
        let gatewayPod = try #require(gateway.spec?.template?.spec)
        let gatewayContainer = try #require(gatewayPod.containers.first { $0.name == "portcullis" })
        let root = tree.directory + "/pod"
        try PodFiles.write(gatewayContainer, of: gatewayPod, manifests: manifests, under: root)
        let settings = try yamlValue(try String(contentsOfFile: root + (gatewayContainer.args?.last ?? ""), encoding: .utf8))
        let primaryURL = (settings["upstream.url"] as? String)
            ?? (settings["upstreams"] as? [[String: Any]])?.first { $0["primary"] as? Bool == true }?["url"] as? String
        let upstream = try #require(URL(string: primaryURL ?? ""))
        let service = manifests.first { $0.kind == "Service" && $0.metadata.name == upstream.host }
        #expect(service?.spec?.selector.map { $0.isSubset(of: registryLabels) } == true, "upstream \(upstream) is not the registry's Service")
    }

    @Test("the lb-backend replicas share the postgres state store: no password in its URL, no robots or push_times file, the password read from the Secret mounted read-only where state.password_file points, and check-config accepts it with the pod's files")
    func loadBalancedBackendSharesPostgresState() throws {
        let tree = try InstalledDeployTree(users: ["alice": "secret"])
        defer { tree.remove() }
        let manifests = try tree.render("overlays/lb-backend")
        let pod = try #require(manifests.deployment(named: "portcullis")?.spec?.template?.spec)
        let container = try #require(pod.containers.first { $0.name == "portcullis" })
        let root = tree.directory + "/pod"
        try PodFiles.write(container, of: pod, manifests: manifests, under: root)
        let configuration = container.args?.last ?? ""
        let settings = try yamlValue(try String(contentsOfFile: root + configuration, encoding: .utf8))

        #expect(settings["state.store"] as? String == "postgres")
        let url = try #require(URLComponents(string: settings["state.url"] as? String ?? ""), "state.url is not a URL")
        #expect(url.scheme == "postgres" && url.user == "portcullis" && url.path == "/portcullis", "state.url \(url)")
        #expect(url.password == nil, "state.url holds a password")
        #expect(settings["users.robots"] == nil, "users.robots is set: robots live in the database")
        #expect(settings["retention.push_times"] == nil, "retention.push_times is set: pushes are recorded in the database")

        // state.password_file, in the pod (relative paths resolve against the configuration's directory).
        let named = try #require(settings["state.password_file"] as? String, "no state.password_file")
        let passwordFile = named.hasPrefix("/") ? named : URL(fileURLWithPath: configuration).deletingLastPathComponent().path + "/" + named
        let mount = try #require(
            (container.volumeMounts ?? []).filter { passwordFile.hasPrefix($0.mountPath + "/") }.max { $0.mountPath.count < $1.mountPath.count },
            "nothing is mounted where \(passwordFile) is")
        let volume = try #require(pod.volumes?.first { $0.name == mount.name })
        let secret = try #require(volume.secret, "\(mount.mountPath) is not a Secret volume")
        #expect(secret.secretName.hasPrefix("portcullis-state-db-"), "\(mount.mountPath) mounts Secret \(secret.secretName)")
        #expect(mount.readOnly == true, "the database password's Secret is mounted writable")
        let item = try #require(secret.items?.first { $0.key == "db-password" }, "the Secret volume does not project db-password")
        #expect(passwordFile == mount.mountPath + "/" + item.path, "state.password_file \(passwordFile) is not the mounted \(mount.mountPath)/\(item.path)")
        #expect(FileManager.default.contents(atPath: root + passwordFile) == Data(tree.databasePassword.utf8), "\(passwordFile) is not the installation's secrets/db-password")

        // check-config reads the password file: it accepts the configuration with the pod's files,
        // and refuses it without the mounted password.
        let check = try Command(try portcullisBinary(), ["check-config", "--config", root + configuration]).run()
        #expect(check.succeeded, "\(check)")
        try FileManager.default.removeItem(atPath: root + passwordFile)
        let withoutPassword = try Command(try portcullisBinary(), ["check-config", "--config", root + configuration]).run()
        #expect(!withoutPassword.succeeded && withoutPassword.standardError.contains("state.password_file"), "\(withoutPassword)")
    }

    @Test("the migration overlay is a canary: registry 2.8 and registry 3 pinned, on one volume with one http secret, each trusting Portcullis under the block registry-config prints for it, 10% of repositories to registry 3, and the Keycloak issuer's certificate mounted")
    func migrationCanary() throws {
        let tree = try InstalledDeployTree(users: ["alice": "secret"])
        defer { tree.remove() }
        let manifests = try tree.render("overlays/migration")
        let old = try #require(manifests.deployment(named: "registry"))
        let new = try #require(manifests.deployment(named: "registry-3"), "no registry 3 Deployment")
        let oldRegistry = try #require(old.spec?.template?.spec.containers.first { $0.name == "registry" })
        let newRegistry = try #require(new.spec?.template?.spec.containers.first { $0.name == "registry" })
        #expect(oldRegistry.image?.range(of: #"^docker\.io/library/registry:2\.8\.[0-9]+"#, options: .regularExpression) != nil, "registry 2.8 is not pinned: \(oldRegistry.image ?? "")")
        let image = newRegistry.image ?? ""
        #expect(image.range(of: #"^docker\.io/library/registry:3\.[0-9]+\.[0-9]+@sha256:"#, options: .regularExpression) != nil, "registry 3 is not pinned by version and digest: \(image)")
        #expect(!image.contains("latest") && !(oldRegistry.image ?? "").contains("latest"))
        #expect(try PodFiles.environment(of: newRegistry, manifests: manifests)["OTEL_TRACES_EXPORTER"] == "none")
        // One storage, one http secret.
        for registry in [oldRegistry, newRegistry] {
            #expect(try PodFiles.environment(of: registry, manifests: manifests)["REGISTRY_HTTP_SECRET"] == tree.httpSecret)
        }
        let claims = [old, new].map { deployment in deployment.spec?.template?.spec.volumes?.compactMap { $0.persistentVolumeClaim?.claimName } ?? [] }
        #expect(claims[0] == claims[1] && !claims[0].isEmpty, "the registries do not share one volume: \(claims)")
        let claim = manifests.first { $0.kind == "PersistentVolumeClaim" && $0.metadata.name == claims[0].first }
        #expect(claim?.spec?.accessModes?.contains("ReadWriteMany") == true, "the shared volume is not ReadWriteMany")

        // Portcullis: registry 2.8 is the primary, registry 3 takes 10% of repositories, and each
        // upstream URL is the Service of its own registry's pods only.
        let pod = try #require(manifests.deployment(named: "portcullis")?.spec?.template?.spec)
        let gateway = try #require(pod.containers.first { $0.name == "portcullis" })
        let root = tree.directory + "/pod"
        try PodFiles.write(gateway, of: pod, manifests: manifests, under: root)
        let configurationPath = root + (gateway.args?.last ?? "")
        let settings = try yamlValue(try String(contentsOfFile: configurationPath, encoding: .utf8))
        let upstreams = try #require(settings["upstreams"] as? [[String: Any]])
        let primary = try #require(upstreams.first { $0["primary"] as? Bool == true })
        let canary = try #require(upstreams.first { $0["primary"] as? Bool != true })
        #expect(primary["registry_version"] as? String == "2.8")
        #expect((canary["registry_version"] as? String)?.hasPrefix("3.") == true)
        #expect(canary["weight"] as? Int == 10)
        for (upstream, deployment) in [(primary, old), (canary, new)] {
            let host = URL(string: upstream["url"] as? String ?? "")?.host
            let service = manifests.first { $0.kind == "Service" && $0.metadata.name == host }
            let podLabels = deployment.spec?.template?.metadata?.labels ?? [:]
            let otherLabels = (deployment.metadata.name == old.metadata.name ? new : old).spec?.template?.metadata?.labels ?? [:]
            #expect(service?.spec?.selector.map { $0.isSubset(of: podLabels) && !$0.isSubset(of: otherLabels) } == true, "\(upstream["name"] ?? "?") is not the Service of its own registry only")
        }

        // Registry 3 trusts Portcullis under the block `registry-config --upstream v3` prints.
        let newPod = try #require(new.spec?.template?.spec)
        let registryRoot = tree.directory + "/registry-3-pod"
        try PodFiles.write(newRegistry, of: newPod, manifests: manifests, under: registryRoot)
        let printed = try Command(
            try portcullisBinary(), ["registry-config", "--config", configurationPath, "--upstream", canary["name"] as? String ?? "", "--out", tree.directory + "/trust-3"]
        ).run().checked()
        let expected = try yamlValue(printed.standardOutput)
        let actual = try yamlValue(try String(contentsOfFile: registryRoot + (newRegistry.args?.last ?? ""), encoding: .utf8))
        for key in ["auth.token.realm", "auth.token.service", "auth.token.issuer"] {
            #expect(actual[key] as? String == expected[key] as? String && actual[key] != nil, "registry 3: \(key)")
        }
        let bundle = try #require(actual["auth.token.rootcertbundle"] as? String)
        #expect(FileManager.default.contents(atPath: registryRoot + bundle) == FileManager.default.contents(atPath: root + "/etc/portcullis/keys/token.crt"))

        let issuers = settings["issuers"] as? [[String: Any]] ?? []
        let keycloak = try #require(issuers.first, "no external issuer")
        let certificate = try #require((keycloak["certificates"] as? [String])?.first)
        let directory = URL(fileURLWithPath: configurationPath).deletingLastPathComponent().path
        #expect(FileManager.default.contents(atPath: directory + "/" + certificate) == tree.keycloakCertificate, "the Keycloak certificate is not mounted where issuers names it")
    }

    // MARK: Container image

    @Test("the README's container build command builds the Containerfile and tags the image the base Deployment runs")
    func containerBuildCommand() throws {
        let readme = try String(contentsOfFile: repositoryRoot + "/README.md", encoding: .utf8)
        let pattern = #"podman build --file Containerfile --tag (\S+) \."#
        let match = try #require(readme.range(of: pattern, options: .regularExpression), "the README shows no container build command")
        let tag = String(readme[match].split(separator: " ")[5])
        let containerfile = try String(contentsOfFile: repositoryRoot + "/Containerfile", encoding: .utf8)
        #expect(containerfile.contains(String(readme[match])), "the Containerfile names another build command")
        #expect(containerfile.contains("--product portcullis"))

        let tree = try InstalledDeployTree(users: ["alice": "secret"])
        defer { tree.remove() }
        let gateway = try #require(try tree.render("base").deployment(named: "portcullis")?.spec?.template?.spec.containers.first)
        #expect(gateway.image == tag, "the base Deployment runs \(gateway.image ?? "nothing"), the README builds \(tag)")
    }

    // MARK: check-deploy

    @Test("check-deploy passes on deploy/k8s and the Containerfile as shipped")
    func checkDeployPasses() throws {
        let result = try Command("bash", [repositoryRoot + "/scripts/check-deploy"], timeout: .seconds(120)).run()
        #expect(result.succeeded, "\(result)")
        #expect(result.standardOutput.contains("check-deploy: ok"))
    }

    /// A deliberate break of a copy of deploy/k8s (or of the Containerfile) and what check-deploy must say about it.
    struct Breakage: Sendable, CustomTestStringConvertible {
        var name: String
        /// File under deploy/k8s (or "Containerfile"), text to replace, replacement.
        var file: String
        var original: String
        var replacement: String
        var environment: [String: String] = [:]
        /// What the failure message must contain.
        var message: String
        var testDescription: String { name }
    }

    static let breakages: [Breakage] = [
        Breakage(
            name: "an unknown field", file: "base/deployment.yaml", original: "  revisionHistoryLimit: 5\n",
            replacement: "  revisionHistoryLimit: 5\n  revisionHistoryLimits: 5\n", message: "'revisionHistoryLimits' was unexpected"),
        Breakage(
            name: "a wrong type", file: "overlays/lb-backend/registry-deployment.yaml", original: "replicas: 2",
            replacement: "replicas: two", message: "'two' is not of type 'integer'"),
        Breakage(
            name: "a missing required field", file: "base/service.yaml", original: "      port: 5000\n", replacement: "",
            message: "'port' is a required property"),
        Breakage(
            name: "an unknown kind", file: "base/poddisruptionbudget.yaml", original: "kind: PodDisruptionBudget",
            replacement: "kind: PodDisruptionBudgets", message: "Couldn't find schema for kind PodDisruptionBudgets"),
        Breakage(
            name: "an image tagged latest", file: "overlays/sidecar/kustomization.yaml", original: "newTag: \"2.8.3\"",
            replacement: "newTag: latest", message: "is tagged latest"),
        Breakage(
            name: "a kustomization that does not render", file: "overlays/sidecar/kustomization.yaml", original: "  - registry-data.yaml\n",
            replacement: "  - registry-data.yaml\n  - no-such-file.yaml\n", message: "kubectl kustomize overlays/sidecar"),
        Breakage(
            name: "no kubectl", file: "base/service.yaml", original: "", replacement: "", environment: ["KUBECTL": "/nonexistent/kubectl"],
            message: "kubectl not found"),
        Breakage(
            name: "a Containerfile copying a file that does not exist", file: "Containerfile", original: "COPY Sources ./Sources",
            replacement: "COPY Source ./Sources", message: "copies Source, which does not exist"),
        Breakage(
            name: "a Containerfile installing a runtime package by name instead of from deploy/image/runtime-packages", file: "Containerfile",
            original: "apt-get install -y --no-install-recommends \\\n    && rm -rf /var/lib/apt/lists/* /image",
            replacement: "apt-get install -y --no-install-recommends zlib1g \\\n    && rm -rf /var/lib/apt/lists/* /image",
            message: "the runtime stage installs zlib1g by name"),
        Breakage(
            name: "a Containerfile whose user is not the image definition's", file: "Containerfile", original: "USER 65532:65532",
            replacement: "USER 1000:1000", message: "USER is 1000:1000"),
        Breakage(
            name: "a Deployment running as another user than the image's", file: "base/deployment.yaml", original: "runAsUser: 65532",
            replacement: "runAsUser: 1000", message: "runs as 1000:65532 (runAsUser:runAsGroup), the image as 65532:65532"),
    ]

    @Test("check-deploy fails, naming the problem, on a deliberately broken copy", arguments: breakages)
    func checkDeployFails(breakage: Breakage) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("check-deploy-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.copyItem(atPath: repositoryRoot + "/deploy/k8s", toPath: directory + "/k8s")
        try FileManager.default.createDirectory(atPath: directory + "/context", withIntermediateDirectories: true)
        for item in ["Containerfile", "Package.swift", "Sources", "Tests", "deploy"] {
            try FileManager.default.createSymbolicLink(atPath: directory + "/context/" + item, withDestinationPath: repositoryRoot + "/" + item)
        }
        if !breakage.original.isEmpty {
            let path = breakage.file == "Containerfile" ? directory + "/context/Containerfile" : directory + "/k8s/" + breakage.file
            var text = try String(contentsOfFile: path, encoding: .utf8)
            try replaceOnce(in: &text, breakage.original, with: breakage.replacement)
            try? FileManager.default.removeItem(atPath: path)
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        }
        let result = try Command(
            "bash", [repositoryRoot + "/scripts/check-deploy", directory + "/k8s", directory + "/context/Containerfile"],
            environment: breakage.environment, timeout: .seconds(120)
        ).run()
        #expect(!result.succeeded, "check-deploy passed with \(breakage.name): \(result)")
        #expect(!result.timedOut)
        #expect(result.standardError.contains(breakage.message), "\(result)")
        #expect(result.standardError.contains("check-deploy: FAIL"), "\(result)")
    }
}

// MARK: - Harness

/// The repository this file belongs to.
private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// A temporary copy of deploy/k8s with the files an installation supplies under secrets/, made as
/// the README says: `portcullis keys generate`, `htpasswd -B`, a random http secret, a random
/// database password, and a Keycloak realm certificate (another generated one).
private struct InstalledDeployTree {
    let directory: String
    let httpSecret: String
    let databasePassword: String
    let keycloakCertificate: Data

    init(users: [String: String]) throws {
        let fileManager = FileManager.default
        directory = fileManager.temporaryDirectory.appendingPathComponent("deploy-\(UUID().uuidString.prefix(8))").path
        try fileManager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try fileManager.copyItem(atPath: repositoryRoot + "/deploy/k8s", toPath: directory + "/k8s")
        // Whatever a developer keeps in their own secrets/ stays out of the test.
        for secrets in ["base/secrets", "overlays/lb-backend/secrets", "overlays/migration/secrets"] {
            let path = directory + "/k8s/" + secrets
            for name in (try? fileManager.contentsOfDirectory(atPath: path)) ?? [] where name != ".gitignore" {
                try fileManager.removeItem(atPath: path + "/" + name)
            }
        }
        let binary = try portcullisBinary()
        _ = try Command(binary, ["keys", "generate", "--out", directory + "/k8s/base/secrets"]).run().checked()
        var htpasswd = ""
        for (account, password) in users.sorted(by: { $0.key < $1.key }) {
            htpasswd += try Command("htpasswd", ["-nbB", account, password]).run().checked().standardOutput
                .trimmingCharacters(in: .whitespacesAndNewlines) + "\n"
        }
        try Data(htpasswd.utf8).write(to: URL(fileURLWithPath: directory + "/k8s/base/secrets/users.htpasswd"))
        try Data(#"{"robots": []}"#.utf8).write(to: URL(fileURLWithPath: directory + "/k8s/base/secrets/robots.json"))
        httpSecret = UUID().uuidString + UUID().uuidString
        try Data(httpSecret.utf8).write(to: URL(fileURLWithPath: directory + "/k8s/overlays/lb-backend/secrets/http-secret"))
        databasePassword = UUID().uuidString + "\n"
        try Data(databasePassword.utf8).write(to: URL(fileURLWithPath: directory + "/k8s/overlays/lb-backend/secrets/db-password"))
        _ = try Command(binary, ["keys", "generate", "--algorithm", "rs256", "--out", directory + "/keycloak"]).run().checked()
        keycloakCertificate = try Data(contentsOf: URL(fileURLWithPath: directory + "/keycloak/token.crt"))
        try keycloakCertificate.write(to: URL(fileURLWithPath: directory + "/k8s/overlays/migration/secrets/keycloak.crt"))
    }

    /// Deletes the tree.
    func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// `kubectl kustomize` of a kustomization of the tree (`base`, `overlays/NAME`), decoded.
    func render(_ kustomization: String) throws -> [Manifest] {
        let rendered = try Command("kubectl", ["kustomize", directory + "/k8s/" + kustomization], timeout: .seconds(60)).run().checked()
        let json = try Command("python3", ["-c", yamlToJSON], input: rendered.standardOutput, timeout: .seconds(60)).run().checked()
        return try JSONDecoder().decode([Manifest].self, from: json.standardOutputData)
    }
}

/// Reads a YAML stream on standard input and prints its documents as one JSON array.
private let yamlToJSON = """
    import json, sys, yaml
    json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout, default=str)
    """

/// One YAML document as nested dictionaries, addressed by dotted key paths (`auth.token.realm`).
private struct YAMLValue {
    var root: Any
    subscript(_ keyPath: String) -> Any? {
        var current: Any? = root
        for key in keyPath.split(separator: ".") {
            current = (current as? [String: Any])?[String(key)]
        }
        return current
    }
}

private func yamlValue(_ text: String) throws -> YAMLValue {
    let json = try Command("python3", ["-c", yamlToJSON], input: text, timeout: .seconds(60)).run().checked()
    let documents = try JSONSerialization.jsonObject(with: json.standardOutputData) as? [Any] ?? []
    guard documents.count == 1 else { throw HarnessError("expected one YAML document, found \(documents.count):\n\(text)") }
    return YAMLValue(root: documents[0])
}

/// Replaces the one occurrence of `original` in `text`; zero or several occurrences are an error,
/// so a changed manifest fails the test instead of running with something else.
private func replaceOnce(in text: inout String, _ original: String, with replacement: String) throws {
    let occurrences = text.components(separatedBy: original).count - 1
    guard occurrences == 1 else { throw HarnessError("expected exactly one `\(original)`, found \(occurrences) in:\n\(text)") }
    text = text.replacingOccurrences(of: original, with: replacement)
}

/// Debian's build of distribution's `registry`.
private func registryExecutable() throws -> String {
    guard let path = which("docker-registry") else { throw HarnessError("docker-registry is not installed: run scripts/setup") }
    return path
}

private func skopeo(_ arguments: [String]) throws -> CommandResult {
    try Command("skopeo", arguments, timeout: .seconds(120)).run()
}

/// Waits (up to a minute, for loaded machines) until the service `process` runs answers at `url`;
/// on failure the error carries what the process logged.
private func waitUntilAnswering(_ url: String, started process: ServiceProcess) async throws {
    do {
        try await waitUntilAnswering(url, timeout: .seconds(60))
    } catch {
        throw HarnessError("\(error) (process \(process.isRunning ? "running" : "exited")); its log:\n\(process.log)")
    }
}

/// Polls `url` until it answers `status`; whether it did before `timeout`.
private func waitForStatus(_ status: Int, url: String, timeout: Duration) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        let result = try await Command("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", url]).runInBackground()
        if result.standardOutput == String(status) { return true }
        try await Task.sleep(for: .milliseconds(250))
    }
    return false
}

// MARK: - Rendered manifests

/// The parts of rendered Kubernetes resources these tests read; everything else is ignored.
private struct Manifest: Decodable {
    var kind: String
    var metadata: Metadata
    var data: [String: String]?
    var spec: Spec?

    struct Metadata: Decodable {
        var name: String
        var labels: [String: String]?
    }

    /// Fields of Deployment, NetworkPolicy and Service specs (no two kinds use a name differently).
    struct Spec: Decodable {
        var replicas: Int?
        var template: PodTemplate?
        var selector: [String: String]?
        var podSelector: LabelSelector?
        var policyTypes: [String]?
        var ingress: [NetworkPolicyRule]?
        var accessModes: [String]?

        enum CodingKeys: String, CodingKey { case replicas, template, selector, podSelector, policyTypes, ingress, accessModes }

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            replicas = try container.decodeIfPresent(Int.self, forKey: .replicas)
            template = try container.decodeIfPresent(PodTemplate.self, forKey: .template)
            // A Service's selector is a plain map; a Deployment's or PDB's is a LabelSelector.
            selector = try? container.decodeIfPresent([String: String].self, forKey: .selector)
            podSelector = try container.decodeIfPresent(LabelSelector.self, forKey: .podSelector)
            accessModes = try container.decodeIfPresent([String].self, forKey: .accessModes)
            policyTypes = try container.decodeIfPresent([String].self, forKey: .policyTypes)
            ingress = try? container.decodeIfPresent([NetworkPolicyRule].self, forKey: .ingress)
        }
    }

    struct PodTemplate: Decodable {
        var metadata: Metadata?
        var spec: PodSpec

        struct Metadata: Decodable { var labels: [String: String]? }
    }

    struct LabelSelector: Decodable { var matchLabels: [String: String]? }

    struct NetworkPolicyRule: Decodable {
        var from: [Peer]?
        struct Peer: Decodable { var podSelector: LabelSelector? }
    }
}

private struct PodSpec: Decodable {
    var containers: [Container]
    var volumes: [Volume]?
}

private struct Container: Decodable {
    var name: String
    var image: String?
    var command: [String]?
    var args: [String]?
    var env: [EnvVar]?
    var volumeMounts: [VolumeMount]?

    struct EnvVar: Decodable {
        var name: String
        var value: String?
        var valueFrom: Source?
        struct Source: Decodable {
            var secretKeyRef: KeyReference?
            var configMapKeyRef: KeyReference?
        }
        struct KeyReference: Decodable {
            var name: String
            var key: String
        }
    }

    struct VolumeMount: Decodable {
        var name: String
        var mountPath: String
        var subPath: String?
        var readOnly: Bool?
    }
}

private struct Volume: Decodable {
    var name: String
    var configMap: Source?
    var secret: SecretSource?
    var projected: Projected?
    var emptyDir: Empty?
    var persistentVolumeClaim: Claim?

    struct KeyToPath: Decodable {
        var key: String
        var path: String
    }
    struct Source: Decodable {
        var name: String
        var items: [KeyToPath]?
    }
    struct SecretSource: Decodable {
        var secretName: String
        var items: [KeyToPath]?
    }
    struct Projected: Decodable {
        var sources: [Projection]
        struct Projection: Decodable {
            var configMap: Source?
            var secret: Source?
        }
    }
    struct Empty: Decodable {}
    struct Claim: Decodable { var claimName: String }
}

extension Dictionary where Value: Equatable {
    /// Whether every entry of `self` is in `other` (labels matched by a selector).
    fileprivate func isSubset(of other: [Key: Value]) -> Bool { allSatisfy { other[$0.key] == $0.value } }
}

extension [Manifest] {
    fileprivate var deployments: [Manifest] { filter { $0.kind == "Deployment" } }

    fileprivate func deployment(named name: String) -> Manifest? {
        first { $0.kind == "Deployment" && $0.metadata.name == name }
    }

    /// The files of a ConfigMap or Secret (Secret values decoded from base64), by key.
    fileprivate func files(of kind: String, named name: String) throws -> [String: Data] {
        guard let object = first(where: { $0.kind == kind && $0.metadata.name == name }) else {
            throw HarnessError("the pod refers to \(kind) \(name), which the overlay does not render")
        }
        var files: [String: Data] = [:]
        for (key, value) in object.data ?? [:] {
            if kind == "Secret" {
                // kustomize wraps long base64 values over several lines.
                guard let decoded = Data(base64Encoded: value.filter { !$0.isWhitespace }) else { throw HarnessError("\(kind) \(name) key \(key) is not base64") }
                files[key] = decoded
            } else {
                files[key] = Data(value.utf8)
            }
        }
        return files
    }
}

/// What a container sees through its volume mounts, written below a directory that stands for
/// the pod's filesystem root, and the environment it gets.
private enum PodFiles {
    static func write(_ container: Container, of pod: PodSpec, manifests: [Manifest], under root: String) throws {
        let fileManager = FileManager.default
        for mount in container.volumeMounts ?? [] {
            guard let volume = pod.volumes?.first(where: { $0.name == mount.name }) else {
                throw HarnessError("container \(container.name) mounts \(mount.name), which the pod does not define")
            }
            let target = root + mount.mountPath
            guard let files = try files(of: volume, manifests: manifests) else {
                try fileManager.createDirectory(atPath: target, withIntermediateDirectories: true)
                continue
            }
            var selected = files
            if let subPath = mount.subPath {
                guard let file = files[subPath] else { throw HarnessError("volume \(volume.name) has no \(subPath)") }
                selected = ["": file]
            }
            for (path, contents) in selected {
                let destination = path.isEmpty ? target : target + "/" + path
                try fileManager.createDirectory(
                    atPath: URL(fileURLWithPath: destination).deletingLastPathComponent().path, withIntermediateDirectories: true)
                try contents.write(to: URL(fileURLWithPath: destination))
            }
        }
    }

    /// The files a volume holds, by path inside it; `nil` for an empty directory or a claim.
    static func files(of volume: Volume, manifests: [Manifest]) throws -> [String: Data]? {
        func select(_ files: [String: Data], _ items: [Volume.KeyToPath]?, _ what: String) throws -> [String: Data] {
            guard let items else { return files }
            var selected: [String: Data] = [:]
            for item in items {
                guard let file = files[item.key] else { throw HarnessError("\(what) has no key \(item.key)") }
                selected[item.path] = file
            }
            return selected
        }
        if let source = volume.configMap {
            return try select(manifests.files(of: "ConfigMap", named: source.name), source.items, "ConfigMap \(source.name)")
        }
        if let source = volume.secret {
            return try select(manifests.files(of: "Secret", named: source.secretName), source.items, "Secret \(source.secretName)")
        }
        if let projected = volume.projected {
            var files: [String: Data] = [:]
            for projection in projected.sources {
                if let source = projection.configMap {
                    files.merge(try select(manifests.files(of: "ConfigMap", named: source.name), source.items, "ConfigMap \(source.name)")) { $1 }
                }
                if let source = projection.secret {
                    files.merge(try select(manifests.files(of: "Secret", named: source.name), source.items, "Secret \(source.name)")) { $1 }
                }
            }
            return files
        }
        if volume.emptyDir != nil || volume.persistentVolumeClaim != nil { return nil }
        throw HarnessError("volume \(volume.name) is of a kind these tests do not lay out")
    }

    /// The container's environment: literal values, and values from Secrets and ConfigMaps.
    static func environment(of container: Container, manifests: [Manifest]) throws -> [String: String] {
        var environment: [String: String] = [:]
        for variable in container.env ?? [] {
            if let value = variable.value {
                environment[variable.name] = value
            } else if let reference = variable.valueFrom?.secretKeyRef {
                guard let data = try manifests.files(of: "Secret", named: reference.name)[reference.key] else {
                    throw HarnessError("Secret \(reference.name) has no key \(reference.key)")
                }
                environment[variable.name] = String(decoding: data, as: UTF8.self)
            } else if let reference = variable.valueFrom?.configMapKeyRef {
                guard let data = try manifests.files(of: "ConfigMap", named: reference.name)[reference.key] else {
                    throw HarnessError("ConfigMap \(reference.name) has no key \(reference.key)")
                }
                environment[variable.name] = String(decoding: data, as: UTF8.self)
            }
        }
        return environment
    }
}
