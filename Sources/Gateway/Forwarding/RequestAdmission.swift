import NIOHTTP1

/// The application's say on each request head, asked on the event loop before anything else.
///
/// An ``Admission`` means the request is decided without leaving the event loop: it goes to
/// the registry from the channel pipeline, or it is answered at once. `nil` hands the request
/// to the asynchronous request handler (anything that must wait: a signature or password
/// check not in a cache, a refusal with its log and audit lines, a request body to read).
protocol RequestAdmission: Sendable {
    /// Decides `head` synchronously if it can, else returns `nil`.
    func admit(_ head: HTTPRequestHead, client: ClientRequest) -> Admission?
}

/// A request decided on the event loop.
enum Admission {
    /// Relay it to the registry.
    case forward(any ForwardedRequest)
    /// Answer it with this (a request without a body only).
    case respond(LocalResponse)
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
