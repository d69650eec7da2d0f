// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "portcullis",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "portcullis", targets: ["Gateway"]),
        .library(name: "Policy", targets: ["Policy"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // libxcrypt's crypt_r for bcrypt (Debian package libcrypt-dev).
        .systemLibrary(name: "CCrypt", path: "Sources/CCrypt"),
        // glibc's malloc_trim (no package: part of libc).
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
        // OpenLDAP's libldap for `users.ldap` (Debian package libldap-dev).
        .systemLibrary(name: "CLDAP", path: "Sources/CLDAP"),
        // Directory logins: an LDAP bind per cache miss, groups as labels. Blocking; never on an event loop.
        .target(name: "LDAPDirectory", dependencies: ["CLDAP", "Policy"]),
        // Pure decisions: scopes, routes, identities, credentials, rules, tokens. No sockets, no files.
        .target(
            name: "Policy",
            dependencies: [
                "CCrypt",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ]
        ),
        // The configuration file: YAML read into a validated `GatewayConfiguration`, every problem with its key path.
        .target(
            name: "PortcullisConfiguration",
            dependencies: ["Policy", .product(name: "Yams", package: "Yams")]
        ),
        // The `portcullis` executable: NIO edge, token endpoint, proxy, config, CLI.
        .executableTarget(
            name: "Gateway",
            dependencies: [
                "Policy",
                "PortcullisConfiguration",
                "LDAPDirectory",
                "CMalloc",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        // Fuzzing (issue 9): the harnesses, shared by the libFuzzer executables and the regression tests.
        .systemLibrary(name: "CLibFuzzer", path: "Sources/CLibFuzzer"),
        .target(
            name: "FuzzHarnesses",
            dependencies: ["Policy", "PortcullisConfiguration", "CLibFuzzer"]
        ),
        // One libFuzzer executable per harness; `make fuzz` builds them with -sanitize=fuzzer,address.
        .executableTarget(name: "FuzzScope", dependencies: ["FuzzHarnesses"], path: "Fuzz/Scope"),
        .executableTarget(name: "FuzzRoute", dependencies: ["FuzzHarnesses"], path: "Fuzz/Route"),
        .executableTarget(name: "FuzzHtpasswd", dependencies: ["FuzzHarnesses"], path: "Fuzz/Htpasswd"),
        .executableTarget(name: "FuzzToken", dependencies: ["FuzzHarnesses"], path: "Fuzz/Token"),
        .executableTarget(name: "FuzzConfiguration", dependencies: ["FuzzHarnesses"], path: "Fuzz/Configuration"),
        .executableTarget(name: "FuzzSignature", dependencies: ["FuzzHarnesses"], path: "Fuzz/Signature"),
        // glibc's posix_spawn extensions (closefrom, chdir) and pipe2, for the test harness's child processes.
        .target(name: "CSpawn", path: "Tests/CSpawn"),
        // Shared helpers for the test targets: free ports, processes, key generation, the real registry.
        .target(
            name: "TestSupport",
            dependencies: ["Policy", "CSpawn", .product(name: "Crypto", package: "swift-crypto")],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "PolicyTests",
            dependencies: ["Policy", "TestSupport", "FuzzHarnesses"]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["Policy", "TestSupport", .product(name: "Crypto", package: "swift-crypto")],
            exclude: ["Browser"]
        ),
        // Directory logins against a real slapd (started by the tests): binds, searches, groups, escaping.
        .testTarget(
            name: "LDAPDirectoryTests",
            dependencies: ["LDAPDirectory", "Policy", "TestSupport"]
        ),
        // Unit tests of the gateway's pure parts (header rules, h2c detection) on NIO's EmbeddedChannel.
        .testTarget(
            name: "GatewayTests",
            dependencies: ["Gateway", .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "Logging", package: "swift-log")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
