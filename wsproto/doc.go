// Package wsproto is the server side of the WebSocket protocol (RFC 6455, and
// permessage-deflate from RFC 7692) over byte slices.
//
// Everything here is a pure function or a small state struct: no sockets, no
// goroutines, and no package-level mutable state apart from the sync.Pools
// of DEFLATE coders behind Inflate and Deflate. The reactor hands it the
// bytes that its event loop has buffered and gets back how many it
// consumed:
//
//   - ParseHandshake checks an HTTP upgrade request head in place and
//     AppendHandshakeResponse / AppendHandshakeError encode the reply.
//   - Parse decodes one frame's structure; Frame.Unmask and MaskBytes apply
//     the client mask in place.
//   - Reader enforces the RFC 6455 §5 rules on a client's frame stream
//     (masking, reserved bits and opcodes, control frames, fragmentation,
//     UTF-8, close payloads, size limits) and reassembles fragmented
//     messages. Each violation is reported as a *CloseError carrying the
//     close code the server should send before it closes the connection.
//   - AppendHeader, AppendFrame and AppendClose encode server frames, which
//     are never masked.
//   - permessage-deflate (RFC 7692), when HandshakeConfig.Compression is
//     set: ParseHandshake negotiates it (always without context takeover,
//     so idle connections hold no compressor state; a smaller server
//     window is honoured through DeflateParams.MaxCompressed), Reader.Deflate lets
//     RSV1 through and marks Message.Compressed, and Inflate / Deflate /
//     Reader.Decompress convert payloads, with Inflate stopping at a size
//     limit so that a compression bomb costs nothing.
//
// Borrowed bytes: every []byte that a function here returns without copying
// (Frame.Payload, Message.Payload, Message.Reason) aliases the caller's input
// or a Reader's buffer, and the comment on each says how long it lives. The
// strings in Request are copies and may be kept.
package wsproto
