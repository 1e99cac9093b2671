package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"chatd/chat"
)

func TestFormatEvent(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 1, 123e6, time.Local).UnixMilli()
	tests := []struct {
		name string
		line string
		want string
	}{
		{
			name: "text message",
			line: `{"topic":"message","time":%T,"app":"shop","uid":"alice","session_id":42,"type":"text","members":["alice","bob"],"message":{"session_id":42,"seq":118,"from":"alice","type":"text","content":{"text":"hi"},"created_at":1}}`,
			want: `12:00:01.123 message  shop  alice → [bob]  s42#118 text "hi"`,
		},
		{
			name: "image message to a big group",
			line: `{"topic":"message","time":%T,"app":"shop","uid":"a","members":["a","b","c","d","e","f","g","h"],"message":{"session_id":7,"seq":2,"type":"image","content":{"url": "https://x/y.png"}}}`,
			want: `12:00:01.123 message  shop  a → [b c d e f +2 more]  s7#2 image {"url":"https://x/y.png"}`,
		},
		{
			name: "long text is clipped",
			line: `{"topic":"message","time":%T,"app":"shop","uid":"a","members":["a","b"],"message":{"session_id":7,"seq":3,"type":"text","content":{"text":"` + strings.Repeat("é", 90) + `"}}}`,
			want: `12:00:01.123 message  shop  a → [b]  s7#3 text "` + strings.Repeat("é", 80) + `…"`,
		},
		{
			name: "customer service transfer",
			line: `{"topic":"service","time":%T,"app":"shop","uid":"dave","session_id":2,"type":"transferred","service":{"type":"transferred","shop":"acme","session_id":2,"customer":"dave","agent":"bob","from":"alice","note":"vip","time":1}}`,
			want: `12:00:01.123 service  shop  dave  acme s2 transferred agent bob note "vip"`,
		},
		{
			name: "ban",
			line: `{"topic":"moderation","time":%T,"app":"shop","uid":"bob","type":"ban","until":1766000000000,"detail":"spam"}`,
			want: `12:00:01.123 moderation shop  bob  ban until 2025-12-17T19:33:20Z  spam`,
		},
		{
			name: "mute for ever",
			line: `{"topic":"moderation","time":%T,"app":"shop","uid":"bob","type":"mute"}`,
			want: `12:00:01.123 moderation shop  bob  mute for ever`,
		},
		{
			name: "kick",
			line: `{"topic":"moderation","time":%T,"app":"shop","uid":"bob","type":"kick","detail":"2 connections"}`,
			want: `12:00:01.123 moderation shop  bob  kick  2 connections`,
		},
		{
			name: "login",
			line: `{"topic":"login","time":%T,"app":"shop","uid":"alice","detail":"127.0.0.1:5555"}`,
			want: `12:00:01.123 login    shop  alice  from 127.0.0.1:5555`,
		},
		{
			name: "online",
			line: `{"topic":"online","time":%T,"app":"shop","uid":"alice"}`,
			want: `12:00:01.123 online   shop  alice`,
		},
		{
			name: "failed login",
			line: `{"topic":"error","time":%T,"app":"shop","error":{"code":"unauthorized","message":"bad token"},"detail":"login from 10.0.0.1:3"}`,
			want: `12:00:01.123 error    shop  -  unauthorized: bad token  (login from 10.0.0.1:3)`,
		},
		{
			name: "group change",
			line: `{"topic":"group","time":%T,"app":"shop","uid":"owner","session_id":9,"type":"add","members":["c","d"]}`,
			want: `12:00:01.123 group    shop  owner  s9 add [c d]`,
		},
		{
			name: "new private session",
			line: `{"topic":"session","time":%T,"app":"shop","uid":"a","session_id":5,"type":"private","members":["a","b"]}`,
			want: `12:00:01.123 session  shop  a  s5 private [a b]`,
		},
		{
			name: "logout",
			line: `{"topic":"logout","time":%T,"app":"shop","uid":"a","detail":"connection closed"}`,
			want: `12:00:01.123 logout   shop  a  connection closed`,
		},
		{
			name: "a topic added later",
			line: `{"topic":"consult","time":%T,"app":"shop","uid":"a","session_id":5,"type":"start"}`,
			want: `12:00:01.123 consult  shop  a  s5 start`,
		},
		{
			name: "consultation accepted",
			line: `{"topic":"consult","time":%T,"app":"shop","uid":"lawyer","session_id":5,"type":"accept","members":["lawyer","cust"],"detail":"active","consult":{"session_id":5,"type":"state","op":"accept","by":"lawyer","state":"active","remaining_seconds":900}}`,
			want: `12:00:01.123 consult  shop  lawyer  s5 accept [lawyer cust]  active  900s left`,
		},
		{
			name: "consultation warning",
			line: `{"topic":"consult","time":%T,"app":"shop","session_id":5,"type":"warning","members":["lawyer","cust"],"detail":"active","consult":{"session_id":5,"type":"warning","state":"active","remaining_seconds":60,"warning_seconds":60}}`,
			want: `12:00:01.123 consult  shop  -  s5 warning [lawyer cust]  active  60s left  warning at 60s`,
		},
		{
			name: "consultation time up",
			line: `{"topic":"consult","time":%T,"app":"shop","uid":"server","session_id":5,"type":"time_up","members":["lawyer","cust"],"detail":"ended","consult":{"session_id":5,"type":"state","op":"time_up","by":"server","state":"ended","remaining_seconds":0,"reason":"time_up","record":{"billed_seconds":1200,"amount":4000,"currency":"CNY"}}}`,
			want: `12:00:01.123 consult  shop  server  s5 time_up [lawyer cust]  ended  0s left  time_up  billed 1200s: 4000 CNY`,
		},
		{
			name: "dropped",
			line: `{"topic":"dropped","time":%T,"count":42}`,
			want: `12:00:01.123 dropped  missed 42 events: this subscriber was too slow`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := strings.Replace(tc.line, "%T", itoa(at), 1)
			var l streamLine
			if err := json.Unmarshal([]byte(raw), &l); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			p := &printer{w: &out}
			if err := p.print([]byte(raw+"\n"), &l); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != tc.want+"\n" {
				t.Fatalf("got\n%q\nwant\n%q", got, tc.want+"\n")
			}
		})
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestRateAndSizeFormats(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{name: "zero rate", got: count(0), want: "0"},
		{name: "half a message a second", got: count(0.5), want: "0.5"},
		{name: "small rate", got: count(7), want: "7.0"},
		{name: "hundreds", got: count(120.4), want: "120"},
		{name: "thousands", got: count(4500), want: "4.5k"},
		{name: "millions", got: count(1.25e6), want: "1.2M"},
		{name: "bytes", got: size(512), want: "512 B"},
		{name: "KiB", got: size(1536), want: "1.5 KiB"},
		{name: "MiB", got: size(45 << 20), want: "45.0 MiB"},
		{name: "GiB", got: size(2 << 30), want: "2.0 GiB"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestPrinterServerInfoAndModes(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 2, 0, time.Local).UnixMilli()
	info := streamLine{Event: chat.Event{Topic: chat.TopicServerInfo, Time: at, Info: &chat.ServerInfo{
		Version: "v1.2.3", UptimeSeconds: 3725, Conns: 1532, UsersOnline: 1204, MsgsInPerSec: 120, MsgsOutPerSec: 4500,
		BytesInPerSec: 1536, BytesOutPerSec: 3 << 20, JournalDepth: 2, LastCommitMS: 0.314, HeapBytes: 45 << 20,
		RSSBytes: 80 << 20, Goroutines: 42, GCCount: 12, GCPauseMS: 0.12,
	}}}
	rawInfo, _ := json.Marshal(info.Event)
	block := "12:00:02.000 serverInfo  chatd v1.2.3  up 1h2m5s\n" +
		"  conns 1532  users online 1204  msgs in 120/s  deliveries 4.5k/s  net in 1.5 KiB/s  out 3.0 MiB/s\n" +
		"  journal 2  last commit 0.31 ms  heap 45.0 MiB  rss 80.0 MiB  goroutines 42  gc 12 (last pause 0.12 ms)\n"
	online := streamLine{Event: chat.Event{Topic: chat.TopicOnline, Time: at, App: "shop", UID: "a"}}
	hb := streamLine{Event: chat.Event{Topic: "heartbeat", Time: at}}

	t.Run("plain output prints blocks one after another", func(t *testing.T) {
		var out bytes.Buffer
		p := &printer{w: &out}
		p.print(rawInfo, &info)
		p.print(nil, &hb) // not shown
		p.print(rawInfo, &info)
		if out.String() != block+block {
			t.Fatalf("got\n%s", out.String())
		}
	})
	t.Run("a terminal redraws the block in place", func(t *testing.T) {
		var out bytes.Buffer
		p := &printer{w: &out, tty: true}
		p.print(rawInfo, &info)
		p.print(rawInfo, &info)
		p.print(nil, &online)
		p.print(rawInfo, &info)
		want := block + "\x1b[3F\x1b[J" + block + "12:00:02.000 online   shop  a\n" + block
		if out.String() != want {
			t.Fatalf("got\n%q\nwant\n%q", out.String(), want)
		}
	})
	t.Run("--json writes the raw lines", func(t *testing.T) {
		var out bytes.Buffer
		p := &printer{w: &out, json: true}
		line := append(rawInfo, '\n')
		p.print(line, &info)
		hbRaw := []byte(`{"topic":"heartbeat","time":1}` + "\n")
		p.print(hbRaw, &hb)
		if out.String() != string(line)+string(hbRaw) {
			t.Fatalf("got %q", out.String())
		}
	})
}

func TestSubscribeUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "unknown topic", args: []string{"subscribe", "mesage"}, want: `filter "mesage": unknown topic "mesage"`},
		{name: "bad condition", args: []string{"subscribe", "all;usr=1"}, want: `unknown condition "usr"`},
		{name: "flag after filters", args: []string{"subscribe", "all", "--json"}, want: "put flags first"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, &out, &errb, func(string) (string, bool) { return "", false })
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a usage error containing %q", err, tc.want)
			}
		})
	}
}
