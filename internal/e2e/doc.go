// Package e2e holds chatd's end-to-end tests: the real store, core, reactor
// and HTTP API wired together on 127.0.0.1 port 0, driven by real WebSocket
// clients (gobwas/ws) and the signed HTTP client. It has no non-test code
// beyond this comment.
package e2e
