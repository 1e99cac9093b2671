package reactor

import "chatd/wsproto"

// newReader returns the frame reader for a connection that upgraded with
// req: RSV1 (permessage-deflate) is allowed only if it was negotiated.
func newReader(s *Server, req *wsproto.Request) wsproto.Reader {
	return wsproto.Reader{MaxMessage: int32(s.cfg.MaxMessage), Deflate: req.Deflate.Enabled} // ≤ 1 GiB (Config.fill)
}
