/// HTTP/2 frames for the Python clients of the HTTP/2 tests, which need what a client library
/// hides: flow-control windows held shut, frames sent at chosen moments, every frame received
/// seen (GOAWAY among them). Prepend ``python`` to a script; it defines `frame`, `integer`,
/// `hpack` (literal header fields, no indexing) and `status_of`.
enum HTTP2Frames {
    static let python = #"""
        import struct

        def frame(kind, flags, stream, payload=b""):
            return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload

        def integer(value, prefix_bits, first=0):
            limit = (1 << prefix_bits) - 1
            if value < limit:
                return bytes([first | value])
            out = [first | limit]
            value -= limit
            while value >= 128:
                out.append((value & 0x7F) | 0x80)
                value >>= 7
            return bytes(out + [value])

        def hpack(headers):
            block = b""
            for name, value in headers:
                block += b"\x00" + integer(len(name), 7) + name.encode() + integer(len(value), 7) + value.encode()
            return block

        def status_of(block):
            # Enough HPACK to spot a static-table :status (indices 8-14), the only thing looked for.
            statuses = {8: "200", 9: "204", 10: "206", 11: "304", 12: "400", 13: "404", 14: "500"}
            return statuses.get(block[0] & 0x7F, "other") if block and block[0] & 0x80 else "literal"


        """#
}
