import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Policy

/// The registry browser under `/ui/` (`ui.enabled`): login with the credentials `/token`
/// accepts, the repositories the user may pull, and a repository's tags grouped by digest with
/// pull commands. Every registry read goes through the same rules and the same upstream token
/// minting as `/v2/`, for exactly what the logged-in user may do. Not on the data plane's hot
/// path: every page is served by the asynchronous handler.
struct UIHandler: Sendable {
    let state: StateHolder
    let authenticator: BasicAuthenticator
    let proxy: ProxyHandler
    let logger: Logger

    static let pageSize = 50
    static let maximumFormSize = 16 * 1024

    func handle(_ request: IncomingRequest, writer: ResponseWriter) async throws {
        let state = state.current
        let method = request.head.method
        switch (method, request.path) {
        case (.GET, "/ui/style.css"):
            try await writer.respond(status: .ok, headers: Self.securityHeaders, body: Array(UITemplates.stylesheet.utf8), contentType: "text/css; charset=utf-8")
        case (.GET, "/ui/login"):
            try await loginPage(request, writer: writer, state: state, error: nil, username: "")
        case (.POST, "/ui/login"):
            try await login(request, writer: writer, state: state)
        case (.POST, "/ui/logout"):
            try await logout(request, writer: writer, state: state)
        case (.GET, "/ui"), (.GET, "/ui/"):
            guard let session = await UISession.current(request.head.headers, state: state) else { return try await redirect(to: "/ui/login", writer: writer) }
            try await repositories(request, session: session, writer: writer, state: state)
        case (.GET, "/ui/prune"):
            guard let session = await UISession.current(request.head.headers, state: state) else { return try await redirect(to: "/ui/login", writer: writer) }
            try await prunePreview(request, session: session, writer: writer, state: state)
        case (.GET, "/ui/delete"):
            guard let session = await UISession.current(request.head.headers, state: state) else { return try await redirect(to: "/ui/login", writer: writer) }
            try await confirmDelete(request, session: session, writer: writer, state: state)
        case (.POST, "/ui/delete"):
            guard let session = await UISession.current(request.head.headers, state: state) else { return try await redirect(to: "/ui/login", writer: writer) }
            try await delete(request, session: session, writer: writer, state: state)
        case (.GET, let path) where path.hasPrefix("/ui/r/"):
            guard let session = await UISession.current(request.head.headers, state: state) else { return try await redirect(to: "/ui/login", writer: writer) }
            try await repository(String(path.dropFirst("/ui/r/".count)), session: session, writer: writer, state: state)
        default:
            try await page("message", ["title": "Not found", "message": "There is no such page."], status: .notFound, writer: writer)
        }
    }

    // MARK: Login

    private func loginPage(_ request: IncomingRequest, writer: ResponseWriter, state: GatewayState, error: String?, username: String, status: HTTPResponseStatus = .ok) async throws {
        let nonce = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        var values: [String: Any] = ["title": "Log in", "csrf": nonce, "username": username]
        if let error { values["error"] = error }
        try await page(
            "login", values, status: status, writer: writer,
            headers: ["set-cookie": UISession.setCookie(UISession.loginCookieName, nonce, maxAge: 3600, secure: isSecure(state))])
    }

    private func login(_ request: IncomingRequest, writer: ResponseWriter, state: GatewayState) async throws {
        guard let form = try await Self.form(request) else {
            return try await page("message", ["title": "Bad request", "message": "The form could not be read."], status: .badRequest, writer: writer)
        }
        let username = form.first("username") ?? ""
        guard let echoed = form.first("csrf"), let expected = UISession.cookie(UISession.loginCookieName, in: request.head.headers), !expected.isEmpty,
            Self.constantTimeEqual(echoed, expected)
        else {
            logger.warning("UI login refused", metadata: ["request": "\(request.id)", "peer": "\(request.remoteAddress)", "reason": "missing or wrong CSRF token"])
            return try await loginPage(request, writer: writer, state: state, error: "The form expired; please log in again.", username: username, status: .forbidden)
        }
        let password = form.first("password") ?? ""
        switch await authenticator.authenticate(account: username, secret: password, address: request.remoteAddress, state: state, requestID: request.id) {
        case .success(let identity):
            let token = try UISession.mint(for: identity, state: state)
            logger.notice("UI login", metadata: ["request": "\(request.id)", "account": "\(identity)", "peer": "\(request.remoteAddress)"])
            var headers: HTTPHeaders = ["location": "/ui/"]
            headers.add(name: "set-cookie", value: UISession.setCookie(UISession.cookieName, token, maxAge: state.configuration.ui.sessionLifetime, secure: isSecure(state)))
            headers.add(name: "set-cookie", value: UISession.setCookie(UISession.loginCookieName, "", maxAge: 0, secure: isSecure(state)))
            try await writer.respond(status: .seeOther, headers: headers.merged(Self.securityHeaders), body: [], contentType: "text/plain")
        case .failure(.throttled(let retryAfter, _)):
            try await loginPage(request, writer: writer, state: state, error: "Too many failed logins: try again in \(retryAfter) seconds.", username: username, status: .tooManyRequests)
        case .failure(.invalid):
            try await loginPage(request, writer: writer, state: state, error: "Wrong user name or password.", username: username, status: .unauthorized)
        case .failure(.unavailable):
            try await loginPage(request, writer: writer, state: state, error: BasicAuthenticator.Failure.unavailableMessage, username: username, status: .serviceUnavailable)
        }
    }

    private func logout(_ request: IncomingRequest, writer: ResponseWriter, state: GatewayState) async throws {
        if let session = await UISession.current(request.head.headers, state: state) {
            guard let form = try await Self.form(request), let echoed = form.first("csrf"), Self.constantTimeEqual(echoed, session.csrf) else {
                return try await page("message", ["title": "Forbidden", "message": "The form expired; reload the page and try again."], status: .forbidden, writer: writer)
            }
        }
        var headers: HTTPHeaders = ["location": "/ui/login"]
        headers.add(name: "set-cookie", value: UISession.setCookie(UISession.cookieName, "", maxAge: 0, secure: isSecure(state)))
        try await writer.respond(status: .seeOther, headers: headers.merged(Self.securityHeaders), body: [], contentType: "text/plain")
    }

    // MARK: Pages

    private func repositories(_ request: IncomingRequest, session: UISession, writer: ResponseWriter, state: GatewayState) async throws {
        let parameters = QueryParameters(request.query ?? "")
        let query = parameters.first("q") ?? ""
        let pageNumber = max(1, parameters.first("page").flatMap(Int.init) ?? 1)
        guard case .success(let all) = await proxy.fullCatalog(state: state) else {
            return try await page("message", session.values(["title": "Registry unavailable", "message": "The registry's catalog could not be read."]), status: .badGateway, writer: writer)
        }
        let visible = all.filter { name in
            (query.isEmpty || name.contains(query)) && Self.mayPull(name, session.identity, state)
        }.sorted()
        let start = (pageNumber - 1) * Self.pageSize
        let shown = start < visible.count ? Array(visible[start..<min(visible.count, start + Self.pageSize)]) : []
        var values = session.values(["title": "Repositories", "repositories": shown, "empty": visible.isEmpty, "query": query])
        values["summary"] = visible.isEmpty ? "" : "\(start + 1)–\(start + shown.count) of \(visible.count)"
        if pageNumber > 1 { values["previous"] = pageNumber - 1 }
        if start + Self.pageSize < visible.count { values["next"] = pageNumber + 1 }
        try await page("repositories", values, writer: writer)
    }

    private func repository(_ name: String, session: UISession, writer: ResponseWriter, state: GatewayState) async throws {
        // A repository the user may not pull is "not found", exactly like one that does not exist.
        guard let repository = try? RepositoryName(name), Self.mayPull(name, session.identity, state) else {
            return try await page("message", session.values(["title": "Not found", "message": "No repository you may see has that name."]), status: .notFound, writer: writer)
        }
        let api = RegistryAPI.minting(for: session.identity.account, state: state, client: proxy.client)
        let digests: [String: String]
        do {
            digests = try await api.tagDigests(of: repository)
        } catch {
            return try await page("message", session.values(["title": "Not found", "message": "No repository you may see has that name."]), status: .notFound, writer: writer)
        }
        var byDigest: [String: [String]] = [:]
        for (tag, digest) in digests { byDigest[digest, default: []].append(tag) }
        let host = state.configuration.publicURL.authority
        let deletable = Self.may(.delete, name, session.identity, state)
        let pushTimes = await planner(api: api, state: state, repository: name, requestID: "").pushTimes[name] ?? [:]
        var summaries: [String: ImageSummary] = [:]
        for digest in byDigest.keys {
            summaries[digest] = await ImageSummary.of(digest, in: repository, api: api, pushTime: pushTimes[digest])
        }
        let groups: [[String: Any]] = byDigest.keys.sorted().map { digest in
            let tags = byDigest[digest]!.sorted()
            let summary = summaries[digest]
            let immutable = Self.immutableTag(among: tags, in: repository, state)
            var group: [String: Any] = [
                "kind": summary?.kind ?? "unknown",
                "size": ImageSummary.format(summary?.size), "time": summary?.time ?? ImageTime.describe(nil),
                "name": name, "deletable": deletable && immutable == nil,
                "digest": digest, "tags": tags.map { ["tag": $0, "pull": "docker pull \(host)/\(name):\($0)"] },
                "pullByDigest": "docker pull \(host)/\(name)@\(digest)", "skopeo": "skopeo copy docker://\(host)/\(name)@\(digest) oci:\(name.split(separator: "/").last ?? "image"):\(tags.first ?? "latest")",
            ]
            // Set only when there are some: Mustache takes an empty string for true.
            if let platforms = summary?.platforms, !platforms.isEmpty { group["platforms"] = platforms.joined(separator: ", ") }
            if let immutable { group["immutable"] = immutable.reason }
            return group
        }
        try await page("repository", session.values(["title": name, "name": name, "groups": groups, "empty": groups.isEmpty]), writer: writer)
    }

    // MARK: Prune preview

    /// The dry-run plan `portcullis prune` would make for this repository with these options,
    /// as a table; running it stays on the command line.
    private func prunePreview(_ request: IncomingRequest, session: UISession, writer: ResponseWriter, state: GatewayState) async throws {
        let parameters = QueryParameters(request.query ?? "")
        guard let name = parameters.first("repository"), let repository = try? RepositoryName(name), Self.mayPull(name, session.identity, state) else {
            return try await page("message", session.values(["title": "Not found", "message": "No repository you may see has that name."]), status: .notFound, writer: writer)
        }
        let keepLast = parameters.first("keep_last").flatMap { $0.isEmpty ? nil : $0 }
        let olderThan = parameters.first("older_than").flatMap { $0.isEmpty ? nil : $0 }
        let tagPattern = parameters.first("tag_pattern").flatMap { $0.isEmpty ? nil : $0 }
        var values = session.values(["title": "Prune preview", "name": name])
        var arguments = ["--repository", name]
        let criteria: RetentionCriteria
        do {
            var keep: Int?
            if let keepLast {
                guard let number = Int(keepLast), number >= 0 else { throw PruneOptionError("keep the newest: a whole number (got \"\(keepLast)\")") }
                keep = number
                arguments += ["--keep-last", keepLast]
            }
            var age: Double?
            if let olderThan {
                guard let seconds = try? PruneCommand.parseAge(olderThan) else { throw PruneOptionError("older than: a number with s, m, h, d or w (got \"\(olderThan)\")") }
                age = seconds
                arguments += ["--older-than", olderThan]
            }
            var pattern: Pattern?
            if let tagPattern {
                guard let parsed = try? Pattern(tagPattern) else { throw PruneOptionError("tags matching: not a glob or /regex/ (got \"\(tagPattern)\")") }
                pattern = parsed
                arguments += ["--tag-pattern", tagPattern]
            }
            guard keep != nil || age != nil || pattern != nil else {
                throw PruneOptionError("give at least one of the three: without them every tag would go")
            }
            criteria = RetentionCriteria(keepLast: keep, olderThan: age, tagPattern: pattern, exclude: [])
        } catch let error as PruneOptionError {
            values["error"] = error.message
            return try await page("prunePreview", values, status: .badRequest, writer: writer)
        }
        let api = RegistryAPI.minting(for: session.identity.account, state: state, client: proxy.client)
        guard let planned = try? await planner(api: api, state: state, repository: name, requestID: request.id).plan(repository, criteria: criteria) else {
            values["error"] = "The registry's tags of \(name) could not be read."
            return try await page("prunePreview", values, status: .badGateway, writer: writer)
        }
        let plan = planned.plan
        var rows: [[String: Any]] = plan.deletions.map { deletion in
            ["action": "delete", "digest": deletion.digest, "time": planned.time(of: deletion.digest), "tags": deletion.tags.joined(separator: " "), "reason": ""]
        }
        for decision in plan.decisions {
            guard let reason = decision.keptBecause else { continue }
            rows.append([
                "action": "keep", "digest": decision.manifest.digest, "time": planned.time(of: decision.manifest.digest),
                "tags": decision.manifest.tag, "reason": "\(reason)",
            ])
        }
        values["rows"] = rows
        values["summary"] = "\(plan.decisions.count) tags: \(plan.deletions.count) manifests (\(plan.deletedTags.count) tags) would be deleted, \(plan.keptTags.count) tags kept."
        values["command"] = (["portcullis", "prune", "--config", "portcullis.yaml"] + arguments.map(Self.shellQuoted) + ["--yes"]).joined(separator: " ")
        // The command runs as the portcullis-prune robot: say now whether the rules let it.
        let robot = PruneCommand.defaultRobot
        if let refusal = PruneCommand.refusal(robot: robot, repository: repository, state: state, now: Date().timeIntervalSince1970) {
            values["refusal"] = "This command would be refused: \(refusal)."
        } else {
            values["allowed"] = "The rules let the robot \(robot) pull and delete in \(name): this command would run."
        }
        try await page("prunePreview", values, writer: writer)
    }

    private struct PruneOptionError: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }

    static func shellQuoted(_ word: String) -> String {
        word.allSatisfy({ $0.isLetter || $0.isNumber || "-_./:@".contains($0) }) ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    // MARK: Delete

    /// The first of `tags` that a content rule keeps immutable in `repository`.
    static func immutableTag(among tags: [String], in repository: RepositoryName, _ state: GatewayState) -> ImmutableTag? {
        guard let rule = state.contentRules.rule(for: repository.value) else { return nil }
        for tag in tags.sorted() {
            if let pattern = rule.protection(of: tag) { return ImmutableTag(repository: repository, tag: tag, rule: rule, pattern: pattern) }
        }
        return nil
    }

    /// The confirmation step: what will go, and a form to make it go.
    private func confirmDelete(_ request: IncomingRequest, session: UISession, writer: ResponseWriter, state: GatewayState) async throws {
        let parameters = QueryParameters(request.query ?? "")
        guard let name = parameters.first("repository"), let digest = parameters.first("digest"), let repository = try? RepositoryName(name),
            Self.mayPull(name, session.identity, state)
        else {
            return try await page("message", session.values(["title": "Not found", "message": "No repository you may see has that name."]), status: .notFound, writer: writer)
        }
        guard Self.may(.delete, name, session.identity, state) else {
            return try await page("message", session.values(["title": "Forbidden", "message": "The rules do not let you delete in \(name)."]), status: .forbidden, writer: writer)
        }
        let api = RegistryAPI.minting(for: session.identity.account, state: state, client: proxy.client)
        let tags = ((try? await api.tagDigests(of: repository)) ?? [:]).filter { $0.value == digest }.keys.sorted()
        if let immutable = Self.immutableTag(among: tags, in: repository, state) {
            return try await page(
                "message", session.values(["title": "Immutable", "message": ContentRefusal.taggedManifestDelete(immutable, digest: digest).description]), status: .forbidden,
                writer: writer)
        }
        try await page("confirmDelete", session.values(["title": "Delete", "name": name, "digest": digest, "tags": tags]), writer: writer)
    }

    /// Deletes a manifest when the rules grant `delete` on its repository (checked here again:
    /// the button's absence is no protection), with a token minted for exactly that, audited.
    private func delete(_ request: IncomingRequest, session: UISession, writer: ResponseWriter, state: GatewayState) async throws {
        guard let form = try await Self.form(request), let echoed = form.first("csrf"), Self.constantTimeEqual(echoed, session.csrf) else {
            return try await page("message", session.values(["title": "Forbidden", "message": "The form expired; reload the page and try again."]), status: .forbidden, writer: writer)
        }
        guard let name = form.first("repository"), let digest = form.first("digest"), let repository = try? RepositoryName(name),
            digest.hasPrefix("sha256:") || digest.hasPrefix("sha512:"), Self.mayPull(name, session.identity, state)
        else {
            return try await page("message", session.values(["title": "Not found", "message": "No repository you may see has that name."]), status: .notFound, writer: writer)
        }
        guard Self.may(.delete, name, session.identity, state) else {
            logger.warning(
                "UI delete refused", metadata: ["request": "\(request.id)", "account": "\(session.identity)", "repository": "\(name)", "reason": "rules grant no delete"])
            return try await page("message", session.values(["title": "Forbidden", "message": "The rules do not let you delete in \(name)."]), status: .forbidden, writer: writer)
        }
        let api = RegistryAPI.minting(for: session.identity.account, state: state, client: proxy.client)
        // The browser deletes without the proxy: content rules are checked here as there.
        if let rule = state.contentRules.rule(for: name), !rule.immutableTags.isEmpty {
            let tags: [String]
            do {
                tags = try await api.tagDigests(of: repository).filter { $0.value == digest }.keys.sorted()
            } catch {
                logger.error("UI delete failed", metadata: ["request": "\(request.id)", "account": "\(session.identity)", "repository": "\(name)", "reason": "\(error)"])
                return try await page("message", session.values(["title": "Not deleted", "message": "The registry could not say which tags point to it: \(error)"]), status: .badGateway, writer: writer)
            }
            if let immutable = Self.immutableTag(among: tags, in: repository, state) {
                let refusal = ContentRefusal.taggedManifestDelete(immutable, digest: digest)
                logger.warning("UI delete refused", metadata: ["request": "\(request.id)", "account": "\(session.identity)", "repository": "\(name)", "reason": "\(refusal)"])
                return try await page("message", session.values(["title": "Immutable", "message": refusal.description]), status: .forbidden, writer: writer)
            }
        }
        do {
            try await api.deleteManifest(digest, in: repository)
        } catch {
            logger.error("UI delete failed", metadata: ["request": "\(request.id)", "account": "\(session.identity)", "repository": "\(name)", "reason": "\(error)"])
            return try await page("message", session.values(["title": "Not deleted", "message": "The registry did not delete it: \(error)"]), status: .badGateway, writer: writer)
        }
        let path = "/v2/\(name)/manifests/\(digest)"
        proxy.didForward(method: .DELETE, path: path, status: 202, headers: [:], account: session.identity.account, state: state)
        proxy.auditChange(method: .DELETE, path: path, account: session.identity.account, peer: request.remoteAddress, status: 202, requestID: request.id)
        logger.notice("UI delete", metadata: ["request": "\(request.id)", "account": "\(session.identity)", "repository": "\(name)", "digest": "\(digest)"])
        try await redirect(to: "/ui/r/\(name)", writer: writer)
    }

    // MARK: Helpers

    static func mayPull(_ name: String, _ identity: Identity, _ state: GatewayState) -> Bool {
        may(.pull, name, identity, state)
    }

    static func may(_ action: ActionSet, _ name: String, _ identity: Identity, _ state: GatewayState) -> Bool {
        state.rules.decide(Scope(resource: Resource(type: Resource.repositoryType, name: name), actions: action), for: identity).granted.contains(action)
    }

    /// Headers on every UI answer: no framing, no inline script or foreign resource, no sniffing.
    static let securityHeaders: HTTPHeaders = [
        "content-security-policy": "default-src 'self'; form-action 'self'; frame-ancestors 'none'",
        "x-frame-options": "DENY", "x-content-type-options": "nosniff", "referrer-policy": "same-origin", "cache-control": "no-store",
    ]

    private func page(_ template: String, _ values: [String: Any], status: HTTPResponseStatus = .ok, writer: ResponseWriter, headers: HTTPHeaders = [:]) async throws {
        let html = UITemplates.library.render(values, withTemplate: template) ?? ""
        try await writer.respond(status: status, headers: headers.merged(Self.securityHeaders), body: Array(html.utf8), contentType: "text/html; charset=utf-8")
    }

    private func redirect(to location: String, writer: ResponseWriter) async throws {
        try await writer.respond(status: .seeOther, headers: HTTPHeaders([("location", location)]).merged(Self.securityHeaders), body: [], contentType: "text/plain")
    }

    private func isSecure(_ state: GatewayState) -> Bool { state.configuration.publicURL.scheme == "https" }

    /// The urlencoded form of a POST, `nil` when it is not one or is too large.
    static func form(_ request: IncomingRequest) async throws -> QueryParameters? {
        guard request.head.headers.first(name: "content-type")?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true else { return nil }
        var body = ByteBuffer()
        for try await part in request.body {
            guard body.readableBytes + part.readableBytes <= maximumFormSize else { return nil }
            var part = part
            body.writeBuffer(&part)
        }
        return QueryParameters(body.readString(length: body.readableBytes) ?? "")
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// The retention planner with the push times of the configured store; without them (the
    /// state store down) images that have no creation time count as new, so none is deleted for age.
    private func planner(api: RegistryAPI, state: GatewayState, repository: String, requestID: String) async -> RetentionPlanner {
        do {
            return try await RetentionPlanner.make(api: api, state: state, store: proxy.shared?.store, repository: repository)
        } catch {
            logger.error("push ledger not read: images without a creation time count as new", metadata: ["request": "\(requestID)", "repository": "\(repository)", "reason": "\(error)"])
            return RetentionPlanner(api: api, pushTimes: [:], content: state.contentRules)
        }
    }
}

extension UISession {
    /// Page values with the header's account and the session's CSRF token added.
    func values(_ values: [String: Any]) -> [String: Any] {
        var values = values
        values["account"] = identity.account
        values["csrf"] = csrf
        return values
    }
}

extension HTTPHeaders {
    fileprivate func merged(_ other: HTTPHeaders) -> HTTPHeaders {
        var result = self
        for (name, value) in other where !result.contains(name: name) { result.add(name: name, value: value) }
        return result
    }
}
