import Policy
import Testing

/// Runs `body` and expects it to throw a ``PolicyError`` with `code` whose message contains
/// every string in `fragments`.
/// - Returns: the error, for further checks (`nil` when something else happened; an issue is
///   recorded then).
@discardableResult
func expectPolicyError<Value>(
    _ code: PolicyError.Code,
    messageContains fragments: [String] = [],
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Value
) -> PolicyError? {
    let value: Value
    do {
        value = try body()
    } catch let error as PolicyError {
        #expect(error.code == code, "expected \(code), got \(error)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(
                error.message.contains(fragment), "message \"\(error.message)\" does not mention \(fragment)",
                sourceLocation: sourceLocation)
        }
        return error
    } catch {
        Issue.record("expected PolicyError \(code), got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        return nil
    }
    Issue.record("expected PolicyError \(code), but got a value: \(value)", sourceLocation: sourceLocation)
    return nil
}

/// Runs the async `body` and expects it to throw a ``PolicyError`` with `code` whose message contains
/// every string in `fragments`.
/// - Returns: the error, for further checks (`nil` when something else happened; an issue is
///   recorded then).
@discardableResult
func expectPolicyError<Value>(
    _ code: PolicyError.Code,
    messageContains fragments: [String] = [],
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Value
) async -> PolicyError? {
    let value: Value
    do {
        value = try await body()
    } catch let error as PolicyError {
        #expect(error.code == code, "expected \(code), got \(error)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(
                error.message.contains(fragment), "message \"\(error.message)\" does not mention \(fragment)",
                sourceLocation: sourceLocation)
        }
        return error
    } catch {
        Issue.record("expected PolicyError \(code), got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        return nil
    }
    Issue.record("expected PolicyError \(code), but got a value: \(value)", sourceLocation: sourceLocation)
    return nil
}

extension Identity {
    /// An htpasswd user with optional labels.
    static func user(_ account: String, labels: [String: [String]] = [:]) -> Identity {
        Identity(account: account, kind: .user, labels: labels)
    }
}
