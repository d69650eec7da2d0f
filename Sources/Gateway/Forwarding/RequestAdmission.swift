import NIOHTTP1

/// The application's say on each request head, asked on the event loop before anything else.
///
/// Returning a ``ForwardedRequest`` means the request is decided and goes to the registry from
/// the channel pipeline, without leaving the event loop. `nil` hands the request to the
/// asynchronous request handler (anything that must wait: a signature or password check not in
/// a cache, an endpoint Portcullis answers itself, a refusal with its log and audit lines).
protocol RequestAdmission: Sendable {
    /// Decides `head` synchronously if it can, else returns `nil`.
    func admit(_ head: HTTPRequestHead, client: ClientRequest) -> (any ForwardedRequest)?
}

/// Who sent a request head, as the transport knows it.
struct ClientRequest {
    /// The client's address (PROXY header, trusted forwarding headers, or the peer).
    var remoteAddress: String
    /// The request's id in logs.
    var id: String
    /// Whether it came on an HTTP/2 stream.
    var isHTTP2: Bool
}
