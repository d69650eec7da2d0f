#if canImport(Glibc)
import Glibc
#endif

/// RFC 3339 times in UTC, formatted without Foundation's formatters (they showed in the
/// per-request and per-token profiles).
enum InternetTime {
    /// `YYYY-MM-DDTHH:MM:SSZ` for `seconds` since 1970 (whole seconds, as `Date.ISO8601FormatStyle` writes them).
    static func seconds(_ seconds: Double) -> String {
        String(decoding: bytes(seconds: Int(seconds.rounded(.down)), milliseconds: nil), as: UTF8.self)
    }

    /// The current time as `YYYY-MM-DDTHH:MM:SS.mmmZ`, for log lines.
    static func nowWithMilliseconds() -> [UInt8] {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return bytes(seconds: Int(now.tv_sec), milliseconds: Int(now.tv_nsec / 1_000_000))
    }

    /// `YYYY-MM-DDTHH:MM:SS[.mmm]Z`.
    static func bytes(seconds: Int, milliseconds: Int?) -> [UInt8] {
        var parts = tm()
        var whole = time_t(seconds)
        gmtime_r(&whole, &parts)
        var out: [UInt8] = []
        out.reserveCapacity(24)
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
        if let milliseconds {
            out.append(UInt8(ascii: "."))
            digits(milliseconds, 3)
        }
        out.append(UInt8(ascii: "Z"))
        return out
    }
}
