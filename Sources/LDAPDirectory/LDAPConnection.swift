import CLDAP
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One connection to the directory through libldap's synchronous API: used by one thread for one
/// login, then closed. Never on an event loop.
final class LDAPConnection {
    /// An entry found by a search.
    struct Entry {
        var dn: String
        var attributes: [String: [String]]
    }

    private var handle: OpaquePointer?

    /// Connects (lazily: libldap connects on the first operation) with protocol version 3, the
    /// timeouts, no referral chasing, and the CA for TLS.
    init(settings: LDAPSettings) throws {
        var handle: OpaquePointer?
        let status = ldap_initialize(&handle, settings.url)
        guard status == LDAP_SUCCESS, let handle else {
            throw LDAPError(operation: "ldap_initialize \(settings.url)", code: status, diagnostic: nil)
        }
        self.handle = handle
        var version = LDAP_VERSION3
        try set(LDAP_OPT_PROTOCOL_VERSION, &version, "protocol version")
        var timeout = timeval(tv_sec: settings.timeout, tv_usec: 0)
        try set(LDAP_OPT_NETWORK_TIMEOUT, &timeout, "network timeout")
        try set(LDAP_OPT_TIMEOUT, &timeout, "timeout")
        try check(ldap_set_option(handle, LDAP_OPT_REFERRALS, nil), "referrals off")
        if let caFile = settings.caFile {
            try check(ldap_set_option(handle, LDAP_OPT_X_TLS_CACERTFILE, caFile), "TLS CA file \(caFile)")
        }
        var demand = LDAP_OPT_X_TLS_DEMAND
        try set(LDAP_OPT_X_TLS_REQUIRE_CERT, &demand, "TLS certificate check")
        var isServer: Int32 = 0
        try set(LDAP_OPT_X_TLS_NEWCTX, &isServer, "TLS context")
        if settings.startTLS {
            try check(ldap_start_tls_s(handle, nil, nil), "StartTLS")
        }
    }

    deinit {
        if let handle { ldap_unbind_ext_s(handle, nil, nil) }
    }

    /// A simple bind. An empty password is refused here: LDAP treats it as an anonymous bind
    /// that succeeds (RFC 4513 §5.1.2), which must never count as a login.
    func bind(dn: String, password: String) throws {
        guard !password.isEmpty else {
            throw LDAPError(operation: "bind \(dn)", code: LDAP_INVALID_CREDENTIALS, diagnostic: "empty password")
        }
        var bytes = Array(password.utf8)
        let status = bytes.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var credential = berval(bv_len: ber_len_t(buffer.count), bv_val: UnsafeMutableRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self))
            return ldap_sasl_bind_s(handle, dn, nil, &credential, nil, nil, nil)
        }
        try check(status, "bind \(dn)")
    }

    /// The entries under `base` (with `scope`) matching `filter`, with `attributes`.
    func search(base: String, scope: Int32, filter: String, attributes: [String], sizeLimit: Int32) throws -> [Entry] {
        var names: [UnsafeMutablePointer<CChar>?] = attributes.map { strdup($0) }
        names.append(nil)
        defer { for name in names { free(name) } }
        var result: OpaquePointer?
        let status = names.withUnsafeMutableBufferPointer { names in
            ldap_search_ext_s(handle, base, scope, filter, names.baseAddress, 0, nil, nil, nil, sizeLimit, &result)
        }
        defer { if result != nil { ldap_msgfree(result) } }
        try check(status, "search \(base) \(filter)")
        var entries: [Entry] = []
        var entry = ldap_first_entry(handle, result)
        while let current = entry {
            var dn = ""
            if let text = ldap_get_dn(handle, current) {
                dn = String(cString: text)
                ldap_memfree(text)
            }
            var values: [String: [String]] = [:]
            for attribute in attributes {
                guard let list = ldap_get_values_len(handle, current, attribute) else { continue }
                var index = 0
                while let value = list[index] {
                    let bytes = UnsafeRawBufferPointer(start: value.pointee.bv_val, count: Int(value.pointee.bv_len))
                    if let text = String(validating: bytes, as: UTF8.self) { values[attribute, default: []].append(text) }
                    index += 1
                }
                ldap_value_free_len(list)
            }
            entries.append(Entry(dn: dn, attributes: values))
            entry = ldap_next_entry(handle, current)
        }
        return entries
    }

    private func set<Value>(_ option: Int32, _ value: inout Value, _ what: String) throws {
        try check(withUnsafePointer(to: &value) { ldap_set_option(handle, option, $0) }, what)
    }

    private func check(_ status: Int32, _ operation: String) throws {
        guard status != LDAP_SUCCESS else { return }
        var message: UnsafeMutablePointer<CChar>?
        var diagnostic: String?
        if let handle, ldap_get_option(handle, LDAP_OPT_DIAGNOSTIC_MESSAGE, &message) == LDAP_OPT_SUCCESS, let message {
            diagnostic = String(cString: message)
            ldap_memfree(message)
        }
        throw LDAPError(operation: operation, code: status, diagnostic: diagnostic)
    }
}
