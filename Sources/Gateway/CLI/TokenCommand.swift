import ArgumentParser
import Foundation
import Policy
import PortcullisConfiguration
import X509

/// `portcullis token …`: token diagnostics.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Token diagnostics.", subcommands: [InspectCommand.self])

    /// `portcullis token inspect [TOKEN|-] [--config FILE]`.
    struct InspectCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "inspect",
            abstract: "Decode a token without trusting it and say which registry versions would accept its header, and why not.")

        @Argument(help: "The token, or - to read it from standard input.")
        var token: String = "-"

        @Option(name: .long, help: "Also verify the signature against the configured issuers and print the effective grant.")
        var config: String?

        func run() async throws {
            var text = token
            if text == "-" {
                text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            }
            text = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if text.lowercased().hasPrefix("bearer ") { text = String(text.dropFirst(7)) }
            let unverified: UnverifiedToken
            do {
                unverified = try UnverifiedToken(text, maximumSize: 1 << 20)
            } catch let error as PolicyError {
                throw ValidationError("not a token: \(error.message)")
            }
            print(TokenReport(unverified).text, terminator: "")

            guard let config else { return }
            let state: GatewayState
            do {
                state = try GatewayState.load(try ConfigurationLoader.load(path: config))
            } catch let error as ConfigurationErrors {
                throw ValidationError("\(error)")
            }
            do {
                let (claims, issuer) = try await state.trustedIssuers.verify(text, now: Date())
                print("verification: signature and claims valid (issuer \"\(issuer.verifier.issuer)\"\(issuer.isPortcullis ? ", Portcullis itself" : ""))")
                let claimed = claims.scopes
                if issuer.trustAccessClaim {
                    print("effective grant: the access claim as is (trust_access_claim)")
                    for scope in claimed { print("  \(scope)") }
                } else {
                    let grant = state.rules.grant(claimed, to: Identity(account: claims.sub.value, kind: .user))
                    print("effective grant: access claim ∩ rules for \"\(claims.sub.value)\"")
                    for decision in grant.decisions { print("  \(decision)") }
                }
            } catch let error as PolicyError {
                print("verification: FAILED: \(error.message)")
                throw ExitCode(1)
            }
        }
    }
}

/// What `token inspect` prints about a token, without trusting it.
struct TokenReport {
    let token: UnverifiedToken

    init(_ token: UnverifiedToken) { self.token = token }

    var text: String {
        var lines: [String] = []
        lines.append("header: \(Self.pretty(token.headerJSON))")
        lines.append("claims: \(Self.pretty(token.payloadJSON))")
        let header = token.header
        let hint: String
        var key: PublicKeyMaterial?
        if let x5c = header.x5c {
            hint = "x5c (chain of \(x5c.count) certificate\(x5c.count == 1 ? "" : "s"))"
            if let der = Data(base64Encoded: x5c[0]), let leaf = try? Certificate(derEncoded: Array(der)) {
                key = try? PublicKeyMaterial(leaf.publicKey)
            }
        } else if let kid = header.kid {
            hint = "kid \"\(kid)\" (\(Self.kidForm(kid)))"
        } else if header.jwk != nil {
            hint = "embedded jwk"
            key = header.jwk
        } else {
            hint = "none (no x5c, kid or jwk)"
        }
        lines.append("key hint: \(hint)")
        if let key {
            let ids = KeyIdentifiers(key)
            lines.append("key ids: libtrust \(ids.libtrust)")
            lines.append("         rfc7638 \(ids.rfc7638)")
            lines.append("         registry-3.1 \(ids.registry31)")
            switch ids.registry30 {
            case .success(let kid): lines.append("         registry-3.0 \(kid)")
            case .failure(let error): lines.append("         registry-3.0 unsupported: \(error.message)")
            }
        }
        for version in RegistryVersion.allCases {
            lines.append("registry \(version): \(Self.verdict(version, header: header, payload: token.payloadJSON))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// What a kid string looks like.
    static func kidForm(_ kid: String) -> String {
        if isLibtrust(kid) { return "libtrust fingerprint" }
        if kid.count == 43, kid.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) {
            return "RFC 7638 thumbprint form"
        }
        return "opaque: only a jwks entry with this literal kid matches it"
    }

    static func isLibtrust(_ kid: String) -> Bool {
        let groups = kid.split(separator: ":", omittingEmptySubsequences: false)
        return groups.count == 12
            && groups.allSatisfy { $0.count == 4 && $0.allSatisfy { ("A"..."Z").contains($0) || ("2"..."7").contains($0) } }
    }

    /// Whether `version` would accept the header form, and why not.
    static func verdict(_ version: RegistryVersion, header: JOSEHeader, payload: [UInt8]) -> String {
        var problems: [String] = []
        let alg = header.alg ?? "none"
        if alg == "none" || alg.hasPrefix("HS") {
            problems.append("alg \(alg) is never accepted")
        } else if version == .v2_8 && (alg.hasPrefix("PS") || alg == "EdDSA") {
            problems.append("2.8 does not support alg \(alg)")
        }
        if version == .v2_8, let claims = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any], claims["aud"] is [Any] {
            problems.append("2.8 needs aud as a JSON string, not an array")
        }
        let form: String
        if header.x5c != nil {
            form = "accepted if the x5c chain leads to a certificate in its rootcertbundle (x5c wins over kid and jwk on every version)"
        } else if let kid = header.kid {
            switch (version, isLibtrust(kid)) {
            case (.v2_8, true):
                form = "accepted if a key in its rootcertbundle has this libtrust id"
            case (.v2_8, false):
                form = "rejected: 2.8 matches kid only as a libtrust fingerprint; use x5c"
            case (_, true):
                form = "rejected: \(version).x never matches a libtrust kid (\"token signed by untrusted key with ID\"); use x5c or a jwks entry with this kid"
            case (.v3_0, false):
                form = "accepted only for an RSA key in rootcertbundle with this RFC 7638 thumbprint (3.0.0 mis-hashes EC keys), or a jwks entry with this kid"
            case (_, false):
                form = "accepted if a rootcertbundle key has this thumbprint (3.1 drops leading zero bytes of EC coordinates) or a jwks entry has this kid"
            }
        } else if header.jwk != nil {
            form = version == .v2_8
                ? "accepted if the embedded jwk's libtrust id is in its rootcertbundle"
                : "rejected: 3.x refuses an embedded jwk without a certificate chain (\"untrusted JWK with no certificate chain\")"
        } else {
            form = "rejected: no x5c, kid or jwk names a key"
        }
        if problems.isEmpty { return form }
        return "rejected: " + problems.joined(separator: "; ") + " (header form otherwise: \(form))"
    }

    static func pretty(_ json: [UInt8]) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json)),
            let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        else { return String(decoding: json, as: UTF8.self) }
        return String(decoding: data, as: UTF8.self)
    }
}
