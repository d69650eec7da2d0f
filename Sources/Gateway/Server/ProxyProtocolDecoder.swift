import NIOCore
import Synchronization

/// Reads the PROXY protocol header (HAProxy's v1 text or v2 binary form) that a load balancer
/// sends before the client's bytes, records the original client address, then removes itself
/// and passes every following byte on unchanged.
///
/// A connection that does not start with a valid header is closed: with PROXY protocol
/// enabled, anyone able to skip it could claim any address.
final class ProxyProtocolDecoder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The v2 signature.
    static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    /// The longest v1 header.
    static let maximumV1Length = 107

    private enum State {
        case waiting
        case done
    }

    private var state = State.waiting
    private var buffered: ByteBuffer?
    private let info: ConnectionInfo

    init(info: ConnectionInfo) {
        self.info = info
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        guard case .waiting = state else {
            context.fireChannelRead(data)
            return
        }
        if buffered == nil {
            buffered = incoming
        } else {
            buffered!.writeBuffer(&incoming)
        }
        switch Self.parse(buffered!) {
        case .needMoreData:
            return
        case .invalid:
            context.close(promise: nil)
        case .parsed(let address, let consumed):
            info.setProxiedClientAddress(address)
            state = .done
            var rest = buffered!
            rest.moveReaderIndex(forwardBy: consumed)
            buffered = nil
            if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    /// The result of looking at the first bytes of a connection.
    enum ParseResult: Equatable {
        case needMoreData
        case invalid
        /// The source address (`nil` for v1 `UNKNOWN` or v2 `LOCAL`) and the header length.
        case parsed(address: String?, consumed: Int)
    }

    /// Parses a header at the start of `buffer`.
    static func parse(_ buffer: ByteBuffer) -> ParseResult {
        let bytes = Array(buffer.readableBytesView.prefix(max(maximumV1Length, 16 + 216)))
        if bytes.count < signature.count {
            let prefixV1 = Array("PROXY ".utf8).prefix(bytes.count)
            let prefixV2 = signature.prefix(bytes.count)
            return bytes.elementsEqual(prefixV1) || bytes.elementsEqual(prefixV2) ? .needMoreData : .invalid
        }
        if Array(bytes.prefix(signature.count)) == signature {
            return parseV2(bytes)
        }
        if bytes.starts(with: Array("PROXY ".utf8)) {
            return parseV1(bytes)
        }
        return .invalid
    }

    private static func parseV1(_ bytes: [UInt8]) -> ParseResult {
        guard let end = bytes.indices.first(where: { $0 + 1 < bytes.count && bytes[$0] == 0x0D && bytes[$0 + 1] == 0x0A }) else {
            return bytes.count >= maximumV1Length ? .invalid : .needMoreData
        }
        let line = String(decoding: bytes[..<end], as: UTF8.self)
        let fields = line.split(separator: " ")
        guard fields.count >= 2, fields[0] == "PROXY" else { return .invalid }
        if fields[1] == "UNKNOWN" { return .parsed(address: nil, consumed: end + 2) }
        guard fields.count == 6, fields[1] == "TCP4" || fields[1] == "TCP6", UInt16(fields[4]) != nil, UInt16(fields[5]) != nil,
            (try? SocketAddress(ipAddress: String(fields[2]), port: 0)) != nil
        else { return .invalid }
        return .parsed(address: String(fields[2]), consumed: end + 2)
    }

    private static func parseV2(_ bytes: [UInt8]) -> ParseResult {
        guard bytes.count >= 16 else { return .needMoreData }
        let versionCommand = bytes[12]
        guard versionCommand >> 4 == 2 else { return .invalid }
        let length = Int(bytes[14]) << 8 | Int(bytes[15])
        guard bytes.count >= 16 + length else { return length > 216 ? .invalid : .needMoreData }
        let consumed = 16 + length
        if versionCommand & 0x0F == 0 { return .parsed(address: nil, consumed: consumed) }  // LOCAL
        guard versionCommand & 0x0F == 1 else { return .invalid }
        let body = Array(bytes[16..<(16 + length)])
        switch bytes[13] {
        case 0x11 where body.count >= 12:
            return .parsed(address: body[0..<4].map(String.init).joined(separator: "."), consumed: consumed)
        case 0x21 where body.count >= 36:
            var groups: [String] = []
            for index in stride(from: 0, to: 16, by: 2) { groups.append(String(UInt16(body[index]) << 8 | UInt16(body[index + 1]), radix: 16)) }
            return .parsed(address: groups.joined(separator: ":"), consumed: consumed)
        case 0x00:
            return .parsed(address: nil, consumed: consumed)
        default:
            return .invalid
        }
    }
}
