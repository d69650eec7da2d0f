import Yams

extension ConfigurationLoader.Reader {
    /// The `log` section as read; each value missing or invalid keeps its default.
    struct Log {
        /// `level`: a swift-log level name.
        var level = "info"
        /// `format`: `logfmt` or `json`.
        var format = "logfmt"
        /// `audit`: `stdout`, `stderr`, `off`, or a file path, resolved.
        var audit = "stdout"
    }

    /// `log` (optional): `format`, `audit` and `level`, checked in that order.
    mutating func readLog(_ node: Node?) -> Log {
        var log = Log()
        if let section = mapping(node, "log", allowed: ["level", "format", "audit"]) {
            if let text = string(section["format"], "log.format") {
                if ["logfmt", "json"].contains(text) { log.format = text } else { problem("log.format", "must be logfmt or json (got \"\(text)\")") }
            }
            if let text = string(section["audit"], "log.audit") {
                if ["stdout", "stderr", "off"].contains(text) {
                    log.audit = text
                } else {
                    log.audit = fileToWrite(text, "log.audit")
                }
            }
            if let text = string(section["level"], "log.level") {
                if ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(text) {
                    log.level = text
                } else {
                    problem("log.level", "must be one of trace, debug, info, notice, warning, error, critical (got \"\(text)\")")
                }
            }
        }
        return log
    }
}
