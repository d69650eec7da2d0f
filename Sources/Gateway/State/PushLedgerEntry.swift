import Foundation
import Policy

/// One accepted manifest push as the push ledger stores it: the `push_times` record, who pushed
/// it, and an identifier that makes writing it again (after a lost acknowledgement) a no-op.
struct PushLedgerEntry: Sendable, Equatable {
    var entry: UUID
    var record: PushRecord
    var account: String
    /// Seconds since 1970.
    var time: Double
}
