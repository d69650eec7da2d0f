import Synchronization

/// Slows and then refuses repeated failed authentications, per account and per client address.
///
/// Each failure delays its own answer a little more (doubling from ``Settings/baseDelay`` up to
/// ``Settings/maxDelay``); once an account or an address reaches its failure limit within
/// ``Settings/window`` seconds it is refused outright for ``Settings/cooldown`` seconds.
/// Successful logins are never delayed and reset the account's count.
public final class AuthenticationThrottle: Sendable {
    /// The limits.
    public struct Settings: Sendable, Equatable {
        /// Failures per account within the window before the account is refused.
        public var maxFailures: Int
        /// Failures per address within the window before the address is refused.
        public var maxFailuresPerAddress: Int
        /// Seconds over which failures count.
        public var window: Double
        /// Seconds a throttled account or address stays refused.
        public var cooldown: Double
        /// Delay of the first failed answer, in seconds.
        public var baseDelay: Double
        /// Longest delay of a failed answer, in seconds.
        public var maxDelay: Double

        /// Creates settings.
        public init(
            maxFailures: Int = 5, maxFailuresPerAddress: Int = 50, window: Double = 60, cooldown: Double = 300,
            baseDelay: Double = 0.05, maxDelay: Double = 1
        ) {
            self.maxFailures = maxFailures
            self.maxFailuresPerAddress = maxFailuresPerAddress
            self.window = window
            self.cooldown = cooldown
            self.baseDelay = baseDelay
            self.maxDelay = maxDelay
        }
    }

    /// Whether an attempt may go ahead.
    public enum Verdict: Sendable, Equatable {
        /// Verify the credentials.
        case allowed
        /// Refuse without verifying; retry after this many seconds.
        case refused(retryAfter: Int, reason: String)
    }

    private struct Record {
        var failures: [Double] = []
        var lockedUntil: Double = 0
    }

    private struct Table {
        var accounts: [String: Record] = [:]
        var addresses: [String: Record] = [:]
    }

    /// The limits in force.
    public let settings: Settings
    private let table = Mutex(Table())

    /// Creates a throttle.
    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    /// Decides whether an attempt for `account` from `address` may be verified at `now`.
    public func check(account: String, address: String, now: Double) -> Verdict {
        table.withLock { table in
            if let until = table.accounts[account]?.lockedUntil, until > now {
                return .refused(retryAfter: Int((until - now).rounded(.up)), reason: "too many failed logins for account \"\(account)\"")
            }
            if let until = table.addresses[address]?.lockedUntil, until > now {
                return .refused(retryAfter: Int((until - now).rounded(.up)), reason: "too many failed logins from \(address)")
            }
            return .allowed
        }
    }

    /// Records a failed attempt.
    /// - Returns: how long to delay the failure's answer, in seconds.
    public func recordFailure(account: String, address: String, now: Double) -> Double {
        table.withLock { table in
            let settings = self.settings
            func add(_ record: inout Record, limit: Int) -> Int {
                record.failures = record.failures.filter { $0 > now - settings.window } + [now]
                if record.failures.count >= limit {
                    record.lockedUntil = now + settings.cooldown
                    record.failures = []
                }
                return record.failures.count
            }
            let count = add(&table.accounts[account, default: Record()], limit: settings.maxFailures)
            _ = add(&table.addresses[address, default: Record()], limit: settings.maxFailuresPerAddress)
            if table.accounts.count + table.addresses.count > 100_000 {
                table.accounts = table.accounts.filter { $0.value.lockedUntil > now || $0.value.failures.last ?? 0 > now - settings.window }
                table.addresses = table.addresses.filter { $0.value.lockedUntil > now || $0.value.failures.last ?? 0 > now - settings.window }
            }
            return min(settings.baseDelay * Double(1 << min(max(count - 1, 0), 20)), settings.maxDelay)
        }
    }

    /// Records a successful login: the account's failures are forgotten.
    public func recordSuccess(account: String) {
        table.withLock { table in
            if table.accounts[account]?.lockedUntil ?? 0 == 0 { table.accounts[account] = nil }
        }
    }

    /// Refuses `account` until `until` (a lock another replica took, through the shared state).
    public func lock(account: String, until: Double) {
        table.withLock { table in
            table.accounts[account, default: Record()].lockedUntil = max(table.accounts[account]?.lockedUntil ?? 0, until)
            table.accounts[account]?.failures = []
        }
    }

    /// Refuses `address` until `until` (a lock another replica took, through the shared state).
    public func lock(address: String, until: Double) {
        table.withLock { table in
            table.addresses[address, default: Record()].lockedUntil = max(table.addresses[address]?.lockedUntil ?? 0, until)
            table.addresses[address]?.failures = []
        }
    }
}
