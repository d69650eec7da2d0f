import CLDAP

/// Escaping of untrusted values (login names, DNs) before they enter a filter or a DN, done by
/// libldap itself.
enum LDAPEscaping {
    /// `value` escaped for an LDAP search filter (RFC 4515: `*`, `(`, `)`, `\` and NUL as `\XX`).
    static func filterValue(_ value: String) -> String {
        var bytes = Array(value.utf8)
        return bytes.withUnsafeMutableBufferPointer { buffer in
            var input = berval(bv_len: ber_len_t(buffer.count), bv_val: buffer.baseAddress.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: CChar.self) })
            var output = berval()
            guard ldap_bv2escaped_filter_value(&input, &output) == LDAP_SUCCESS, let text = output.bv_val else {
                // Only allocation fails here; an empty value matches nothing harmful.
                return ""
            }
            defer { ber_memfree(text) }
            return String(decoding: UnsafeRawBufferPointer(start: text, count: Int(output.bv_len)), as: UTF8.self)
        }
    }

    /// `value` escaped as a DN attribute value (RFC 4514: `,` `+` `"` `\` `<` `>` `;` `=`, NUL,
    /// and leading `#` or space / trailing space), by formatting a one-AVA DN with libldap.
    static func dnValue(_ value: String) -> String? {
        var attribute = Array("x".utf8CString)
        var bytes = Array(value.utf8)
        return attribute.withUnsafeMutableBufferPointer { attribute in
            bytes.withUnsafeMutableBufferPointer { bytes -> String? in
                var ava = LDAPAVA()
                ava.la_attr = berval(bv_len: 1, bv_val: attribute.baseAddress)
                ava.la_value = berval(
                    bv_len: ber_len_t(bytes.count), bv_val: bytes.baseAddress.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: CChar.self) })
                ava.la_flags = UInt32(LDAP_AVA_STRING)
                return withUnsafeMutablePointer(to: &ava) { ava -> String? in
                    var rdn: [UnsafeMutablePointer<LDAPAVA>?] = [ava, nil]
                    return rdn.withUnsafeMutableBufferPointer { rdn -> String? in
                        var dn: [UnsafeMutablePointer<UnsafeMutablePointer<LDAPAVA>?>?] = [rdn.baseAddress, nil]
                        return dn.withUnsafeMutableBufferPointer { dn -> String? in
                            var text: UnsafeMutablePointer<CChar>?
                            guard ldap_dn2str(dn.baseAddress, &text, UInt32(LDAP_DN_FORMAT_LDAPV3)) == LDAP_SUCCESS, let text else { return nil }
                            defer { ldap_memfree(text) }
                            let formatted = String(cString: text)
                            guard formatted.hasPrefix("x=") else { return nil }
                            return String(formatted.dropFirst(2))
                        }
                    }
                }
            }
        }
    }

    /// The value of the first RDN of `dn` (`cn=platform,ou=groups,…` → `platform`), parsed by libldap.
    static func firstRDNValue(of dn: String) -> String? {
        var parsed: LDAPDN?
        guard ldap_str2dn(dn, &parsed, UInt32(LDAP_DN_FORMAT_LDAPV3)) == LDAP_SUCCESS, let parsed else { return nil }
        defer { ldap_dnfree(parsed) }
        guard let rdn = parsed[0], let ava = rdn[0] else { return nil }
        let value = ava.pointee.la_value
        guard let start = value.bv_val else { return nil }
        return String(validating: UnsafeRawBufferPointer(start: start, count: Int(value.bv_len)), as: UTF8.self)
    }
}
