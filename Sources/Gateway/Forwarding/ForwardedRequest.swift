import NIOCore
import NIOHTTP1

/// A request the application decided to forward, as the forwarding core sees it.
///
/// The core knows nothing of scopes or rules: it relays ``upstreamHead`` and the body to
/// ``endpoint`` and asks this object what to do at the two points where the application has a
/// say (the registry's response head, a registry that failed) and tells it how the exchange
/// ended. Every call comes on the client channel's event loop.
protocol ForwardedRequest: AnyObject {
    /// The head to send to the registry (target, headers and token already rewritten).
    var upstreamHead: HTTPRequestHead { get }
    /// The registry.
    var endpoint: UpstreamEndpoint { get }
    /// How long the registry may send nothing while it owes a response.
    var silenceTimeout: TimeAmount { get }
    /// The registry's response head arrived: relay it (headers as they go to the client) or
    /// answer the client instead (the upstream connection is then closed).
    func responseHead(_ head: HTTPResponseHead) -> ResponseDecision
    /// The registry failed before its response head: the answer for the client.
    func upstreamFailed(_ error: any Error) -> LocalResponse
    /// The exchange is over (the response was handed to the client, or it cannot be).
    func finished(_ outcome: ExchangeOutcome)
}

/// What to send the client for the registry's response head.
enum ResponseDecision {
    /// Relay the response with this head.
    case relay(HTTPResponseHead)
    /// Answer with this instead and drop the registry's response.
    case answer(LocalResponse)
}

/// A whole response with a fixed body, made by Portcullis.
struct LocalResponse {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders
    var body: [UInt8]
}

/// How a forwarded exchange ended, for the request log and metrics.
struct ExchangeOutcome {
    /// The status the client was sent (0 if none).
    var status: Int = 0
    /// The registry's status (0 if it sent none).
    var upstreamStatus: Int = 0
    /// Request body bytes relayed to the registry.
    var bytesIn = 0
    /// Response body bytes handed to the client.
    var bytesOut = 0
    /// Whether the whole response was handed to the client.
    var completed = false
    /// Whether the client connection is closed after this exchange.
    var closesConnection = false
    /// What went wrong, if anything.
    var failure: Failure?
    /// Whether the client connection was closed while a graceful shutdown was under way (its
    /// grace period ran out).
    var duringShutdown = false

    enum Failure {
        /// The client went away before its request body ended.
        case clientGoneDuringRequest
        /// The client went away while the response was being sent.
        case clientGoneDuringResponse
        /// The registry failed before its response head (the client got ``ForwardedRequest/upstreamFailed(_:)``'s answer).
        case upstreamFailedBeforeResponse(any Error)
        /// The registry's response broke off after its head went to the client.
        case upstreamBrokeResponse(any Error)
    }
}
