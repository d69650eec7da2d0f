import Foundation

/// A throw-away CA and a server certificate for 127.0.0.1, made with the system's `openssl`.
public enum TestCertificateAuthority {
    /// Writes `ca.crt`, `server.crt` and `server.key` into `directory`.
    public static func issue(into directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let extensions = directory + "/server.ext"
        try Data("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n".utf8).write(to: URL(fileURLWithPath: extensions))
        for arguments in [
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(directory)/ca.key",
             "-out", "\(directory)/ca.crt", "-days", "2", "-subj", "/CN=portcullis test CA"],
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(directory)/server.key",
             "-out", "\(directory)/server.csr", "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", "\(directory)/server.csr", "-CA", "\(directory)/ca.crt", "-CAkey", "\(directory)/ca.key",
             "-CAcreateserial", "-out", "\(directory)/server.crt", "-days", "2", "-extfile", extensions],
        ] {
            _ = try Command("openssl", arguments).run().checked()
        }
    }
}
