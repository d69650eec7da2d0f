/// The database's lock of one protected tag, held by ``PostgresStateStore/acquireTagPushLock(_:)``
/// until ``release()`` (called once the registry answered the push).
struct TagPushLease: Sendable {
    let release: @Sendable () -> Void
}
