package main

import (
	"bytes"
	"testing"
	"time"

	"chatd/chat"
)

// On a cluster each line names its node, and the nodes' serverInfo
// blocks are redrawn together on a terminal, in node order.
func TestPrinterClusterNodes(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 2, 0, time.Local).UnixMilli()
	info := func(node string, conns int) *streamLine {
		return &streamLine{Event: chat.Event{Topic: chat.TopicServerInfo, Time: at, Node: node,
			Info: &chat.ServerInfo{Version: "v1", Conns: conns}}}
	}
	block := func(node string, conns int) string {
		var b bytes.Buffer
		formatInfo(&b, at, node, info(node, conns).Info)
		return b.String()
	}
	if b := block("n2", 7); !bytes.HasPrefix([]byte(b), []byte("12:00:02.000 [n2] serverInfo  chatd v1")) {
		t.Fatalf("block = %q", b)
	}
	var out bytes.Buffer
	p := &printer{w: &out, tty: true}
	p.print(nil, info("n2", 1))
	p.print(nil, info("n1", 2))
	p.print(nil, info("n2", 3))
	p.print(nil, &streamLine{Event: chat.Event{Topic: chat.TopicOnline, Time: at, App: "shop", UID: "a", Node: "n3"}})
	want := block("n2", 1) +
		"\x1b[3F\x1b[J" + block("n1", 2) + block("n2", 1) +
		"\x1b[6F\x1b[J" + block("n1", 2) + block("n2", 3) +
		"12:00:02.000 [n3] online   shop  a\n"
	if out.String() != want {
		t.Fatalf("got\n%q\nwant\n%q", out.String(), want)
	}
}
