import Foundation
import Testing
import TestSupport

/// `state.store: postgres` with the database stopped under load and started again: what keeps
/// working, what fails closed, and that the push ledger loses nothing.
@Suite("shared state: the database stopped under load")
struct SharedStateOutageTests {
    static let users = ["ci": "ci-secret", "reader": "reader-secret"]
    static let rules = """
          - {account: ci, name: "**", actions: [pull, push, delete]}
          - {account: reader, name: "**", actions: [pull]}
        """

    func curl(_ arguments: [String], _ url: String) async throws -> (status: Int, body: String) {
        let output = try await Command("curl", ["-s", "--max-time", "60", "-o", "-", "-w", "\n%{http_code}"] + arguments + [url], timeout: .seconds(90))
            .runInBackground().standardOutput
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    /// Polls `condition` until it holds or `limit` passes.
    func eventually(within limit: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws -> Bool {
        let clock = ContinuousClock()
        let start = clock.now
        while clock.now - start < limit {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    @Test("database stopped: cached pulls keep succeeding, pushes are accepted and queued, immutable-tag pushes fail closed with 503, /readyz stays ready, a failed login is counted locally with an error; started again: every queued push reaches the ledger")
    func databaseStoppedUnderLoad() async throws {
        let database = try await PostgresServer.start(
            in: FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-pg-outage-\(UUID().uuidString.prefix(8))").path)
        let deployment = try await Deployment.start(
            users: Self.users, rules: Self.rules,
            extraConfiguration: """
                state:
                  store: postgres
                  url: \(database.url)
                  password_file: db-password
                content:
                  - repositories: ["release/**"]
                    immutable_tags: ["v*"]
                """,
            robotsFile: false, files: ["db-password": PostgresServer.password + "\n"])
        let url = deployment.url
        let layout = FileManager.default.temporaryDirectory.appendingPathComponent("oci-outage-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: layout) }
        let image = try OCIImageLayout.write(to: layout, tag: "v1", layers: [["file.txt": Data("outage\n".utf8)]], label: "outage")
        let manifest = layout + "/blobs/sha256/" + image.manifestDigest.dropFirst("sha256:".count)
        let accept = ["-H", "Accept: application/vnd.oci.image.manifest.v1+json"]
        let put = ["-X", "PUT", "-u", "ci:ci-secret", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json", "--data-binary", "@\(manifest)"]
        // Pulls and pushes go to different repositories: registry 2.8's filesystem driver rewrites
        // a manifest's revision link in place on each PUT of it, and a GET reading it meanwhile
        // gets 500 "invalid checksum digest format" (with or without Portcullis).
        for reference in ["outage/app:warm", "outage/pushes:blobs", "release/app:blobs"] {
            try await deployment.push(layout, credentials: "ci:ci-secret", to: reference).checked()
        }
        // The reader's credential is verified once and cached.
        #expect(try await curl(["-u", "reader:reader-secret"] + accept, url + "/v2/outage/app/manifests/warm").status == 200)

        database.stop()
        #expect(!database.isRunning)

        // Under load: 8 pullers × 10 pulls, and 6 manifest pushes, at once.
        let answers = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var answers: [String] = []
                    for _ in 0..<10 {
                        let pull = try await curl(["-u", "reader:reader-secret"] + accept, url + "/v2/outage/app/manifests/warm")
                        answers.append(pull.status == 200 ? "pull 200" : "pull \(pull.status) \(pull.body.prefix(300))")
                    }
                    return answers
                }
            }
            for index in 0..<6 {
                group.addTask {
                    let push = try await curl(put, url + "/v2/outage/pushes/manifests/during-\(index)")
                    return [push.status == 201 ? "push 201" : "push \(push.status) \(push.body.prefix(300))"]
                }
            }
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(answers.filter { $0 == "pull 200" }.count == 80, "\(answers.filter { $0 != "pull 200" && $0 != "push 201" })")
        #expect(answers.filter { $0 == "push 201" }.count == 6, "\(answers.filter { $0 != "pull 200" && $0 != "push 201" })")

        // The first push of an immutable tag needs the database's lock: refused, never let through unserialized.
        let immutable = try await curl(put, url + "/v2/release/app/manifests/v1")
        #expect(immutable.status == 503, "\(immutable)")
        #expect(immutable.body.contains("UNAVAILABLE") && immutable.body.contains("state store"), "\(immutable)")
        #expect(try await curl([], url + "/readyz").status == 200)

        // A failed login: throttled on this replica only, said at error and counted.
        #expect(try await curl(["-u", "reader:wrong"], url + "/v2/").status == 401)
        let log = await deployment.gateway.log(once: { $0.contains("failed login not shared") })
        #expect(log.contains("failed login not shared"), "\(log.suffix(3000))")
        let metrics = try await curl([], url + "/metrics").body
        #expect(metrics.contains("portcullis_state_store_failures_total{operation=\"throttle\"}"), "\(metrics)")
        #expect(metrics.contains("portcullis_push_ledger_queued 6"), "\(metrics)")

        try await database.restart()
        let query = "SELECT count(*) FROM portcullis.push_ledger WHERE repository = 'outage/pushes' AND reference LIKE 'during-%'"
        let arrived = try await eventually { try await database.psql(query, database: PostgresServer.database) == "6" }
        let held = try await database.psql(query, database: PostgresServer.database)
        #expect(arrived, "ledger holds \(held) of 6")
        let distinct = try await database.psql(
            "SELECT count(DISTINCT reference) FROM portcullis.push_ledger WHERE repository = 'outage/pushes' AND reference LIKE 'during-%'", database: PostgresServer.database)
        #expect(distinct == "6")
        // With the database back, the immutable tag takes its first push.
        let accepted = try await eventually { try await curl(put, url + "/v2/release/app/manifests/v1").status == 201 }
        #expect(accepted)
        deployment.stop()
        database.stop()
    }
}
