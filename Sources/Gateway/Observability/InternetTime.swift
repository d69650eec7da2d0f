#if canImport(Glibc)
import Glibc
#endif

/// RFC 3339 times in UTC, formatted without Foundation's formatters.
enum InternetTime {
    /// `YYYY-MM-DDTHH:MM:SSZ` for `seconds` since 1970 (whole seconds, as `Date.ISO8601FormatStyle` writes them).
    static func seconds(_ seconds: Double) -> String {
        var parts = tm()
        var whole = time_t(seconds.rounded(.down))
        gmtime_r(&whole, &parts)
        var out: [UInt8] = []
        out.reserveCapacity(20)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8((value / divisor) % 10))
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4)
        out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2)
        out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2)
        out.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2)
        out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2)
        out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2)
        out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }
}
