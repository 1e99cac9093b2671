// Package interop tests chatd's WebSocket server against clients the
// project did not write: gorilla/websocket and coder/websocket (Go), Node's
// ws package, and a real headless Chromium driven by playwright-core. The
// Chromium tests also cover the HTTP side as a web page uses it without a
// WebSocket: CORS, uploads, Server-Sent Events and signed file URLs in an
// <img> (TestBrowserUpload). TestSDKResyncAndSendQueue runs the project's
// JavaScript SDK (sdk/js) over Node's ws against a real chatd: resync after
// an outage and the send queue's cid retries.
//
// The Go clients run everywhere. The Node clients need `npm ci` in
// internal/interop/node (and in sdk/js for the SDK test) and Debian's chromium at /usr/bin/chromium; without
// them those tests skip, unless CHATD_REQUIRE_INTEROP=1 (as in CI), where
// they fail. The package has no non-test code beyond this comment.
package interop
