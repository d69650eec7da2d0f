import Foundation

/// A throw-away CA and a server certificate for 127.0.0.1, made with the system's `openssl`.
public enum TestCertificateAuthority {
    /// Writes `ca.crt`, `server.crt` and `server.key` into `directory`.
    public static func issue(into directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        _ = try Command(
            "openssl",
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(directory)/ca.key",
             "-out", "\(directory)/ca.crt", "-days", "2", "-subj", "/CN=portcullis test CA"]
        ).run().checked()
        try reissueServer(in: directory)
    }

    /// Issues a new `server.crt` and `server.key` from the CA already in `directory`.
    public static func reissueServer(in directory: String) throws {
        let extensions = directory + "/server.ext"
        try Data("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n".utf8).write(to: URL(fileURLWithPath: extensions))
        for arguments in [
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(directory)/server.key.new",
             "-out", "\(directory)/server.csr", "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", "\(directory)/server.csr", "-CA", "\(directory)/ca.crt", "-CAkey", "\(directory)/ca.key",
             "-CAcreateserial", "-out", "\(directory)/server.crt.new", "-days", "2", "-extfile", extensions],
        ] {
            _ = try Command("openssl", arguments).run().checked()
        }
        try GatewayUser.handOver("\(directory)/server.key.new")
        try GatewayUser.handOver("\(directory)/server.crt.new")
        // Key first, then certificate: each rename is atomic.
        try? FileManager.default.removeItem(atPath: "\(directory)/server.key")
        try FileManager.default.moveItem(atPath: "\(directory)/server.key.new", toPath: "\(directory)/server.key")
        try? FileManager.default.removeItem(atPath: "\(directory)/server.crt")
        try FileManager.default.moveItem(atPath: "\(directory)/server.crt.new", toPath: "\(directory)/server.crt")
    }

    /// The serial number of the certificate a TLS server on 127.0.0.1:`port` presents.
    public static func presentedSerial(port: Int) throws -> String {
        let result = try Command(
            "sh", ["-c", "openssl s_client -connect 127.0.0.1:\(port) -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -serial"],
            timeout: .seconds(10)
        ).run()
        return result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
