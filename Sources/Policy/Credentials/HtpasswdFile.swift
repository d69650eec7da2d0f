/// The accounts of an htpasswd file, as written by `htpasswd -B`.
///
/// Parsing never fails for a line with a hash kind Portcullis does not verify: the line is
/// kept and every login against it is refused with ``PolicyError/Code/unsupportedHashKind``,
/// so an operator sees exactly which account needs a bcrypt hash.
public struct HtpasswdFile: Sendable, Equatable {
    /// One `user:hash` line.
    public struct Entry: Sendable, Equatable {
        /// The account name.
        public var account: String
        /// The stored hash, verbatim.
        public var hash: String
    }

    /// Entries by account; the first line for an account wins, as in Apache.
    public private(set) var entries: [String: Entry] = [:]

    /// Parses the text of an htpasswd file. Blank lines and `#` comments are skipped.
    /// - Throws: ``PolicyError/Code/malformedCredentialEntry`` naming the line number of a line
    ///   without `:` or with an empty account.
    public init(contents: String) throws {
        var lineNumber = 0
        // `isNewline` covers "\n", "\r" and the single Character "\r\n".
        for line in contents.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                throw PolicyError(.malformedCredentialEntry, "htpasswd line \(lineNumber) is not of the form user:hash")
            }
            let account = String(line[..<colon])
            let hash = String(line[line.index(after: colon)...])
            if entries[account] == nil {
                entries[account] = Entry(account: account, hash: hash)
            }
        }
    }

    /// Verifies a password for `account`.
    /// - Returns: the entry that matched.
    /// - Throws: ``PolicyError`` with ``PolicyError/Code/unknownAccount``,
    ///   ``PolicyError/Code/unsupportedHashKind`` (for `{SHA}`, `$apr1$`, crypt or plain text
    ///   lines) or ``PolicyError/Code/invalidCredentials``.
    public func verify(account: String, password: String) throws -> Entry {
        guard let entry = entries[account] else {
            throw PolicyError(.unknownAccount, "no htpasswd entry for account \"\(account)\"")
        }
        guard Bcrypt.isBcrypt(entry.hash) else {
            throw PolicyError(
                .unsupportedHashKind,
                "htpasswd entry for \"\(account)\" uses \(Self.hashKind(entry.hash)); only bcrypt ($2y$, $2b$, $2a$ from htpasswd -B) is accepted"
            )
        }
        guard try Bcrypt.verify(password: password, hash: entry.hash) else {
            throw PolicyError(.invalidCredentials, "wrong password for account \"\(account)\"")
        }
        return entry
    }

    /// A human name for the kind of hash, for error messages.
    static func hashKind(_ hash: String) -> String {
        if hash.hasPrefix("{SHA}") { return "SHA-1 ({SHA})" }
        if hash.hasPrefix("$apr1$") { return "Apache MD5 ($apr1$)" }
        if hash.hasPrefix("$1$") { return "MD5-crypt ($1$)" }
        if hash.hasPrefix("$5$") || hash.hasPrefix("$6$") { return "SHA-crypt" }
        if hash.count == 13 { return "DES crypt" }
        return "an unrecognised hash (plain text?)"
    }
}
