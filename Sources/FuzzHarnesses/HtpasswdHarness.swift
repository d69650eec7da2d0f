import Policy

/// Fuzzes htpasswd parsing: every account that parses can be looked up and is refused a wrong
/// password; a line only ever yields its own account.
enum HtpasswdHarness {
    static func run(_ input: [UInt8]) throws(FuzzFinding) {
        let text = String(decoding: input, as: UTF8.self)
        guard let file = try? HtpasswdFile(contents: text) else { return }
        for (account, entry) in file.entries {
            guard entry.account == account, !account.isEmpty, !account.contains(":") else {
                throw FuzzFinding("htpasswd", "entry \(String(reflecting: entry.account)) is filed under \(String(reflecting: account))")
            }
            guard text.contains(account + ":" + entry.hash) else {
                throw FuzzFinding("htpasswd", "entry \(String(reflecting: account)) with hash \(String(reflecting: entry.hash)) is not a line of the file")
            }
            // Only cheap bcrypt costs are tried: the cost is the file author's choice, not the fuzzer's.
            if Bcrypt.isBcrypt(entry.hash), let cost = Int(entry.hash.dropFirst(4).prefix(2)), cost > 6 { continue }
            if (try? file.verify(account: account, password: "portcullis fuzzing password \u{1F511}")) != nil {
                throw FuzzFinding("htpasswd", "account \(String(reflecting: account)) accepted an arbitrary password")
            }
        }
    }
}
