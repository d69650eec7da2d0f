import NIOCore
import NIOHTTP1

/// Closes an HTTP/1.1 connection that does not deliver a complete request head in time:
/// counted from the moment the connection opens or the previous response ends, so it bounds
/// both idle keep-alive connections and clients that trickle their headers (slowloris).
///
/// A small state machine: `waitingForHead` (timer armed) → `serving` (timer off) on a request
/// head → `waitingForHead` again when the response's end has been written.
final class RequestHeadTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case waitingForHead(Scheduled<Void>?)
        case serving
    }

    private let timeout: TimeAmount
    private var state = State.waitingForHead(nil)

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data), case .waitingForHead(let timer) = state {
            timer?.cancel()
            state = .serving
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), case .serving = state {
            arm(context: context)
        }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .waitingForHead(let timer) = state { timer?.cancel() }
        state = .serving
        context.fireChannelInactive()
    }

    private func arm(context: ChannelHandlerContext) {
        if case .waitingForHead(let timer) = state { timer?.cancel() }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let timer = context.eventLoop.scheduleTask(in: timeout) {
            loopBound.value.close(promise: nil)
        }
        state = .waitingForHead(timer)
    }
}
