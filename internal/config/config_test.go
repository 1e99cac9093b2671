package config

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// load runs the loader the way chatd does: register, parse args, load env.
func load(t *testing.T, args, env []string) (*Loaded, error) {
	t.Helper()
	fs := flag.NewFlagSet("chatd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l := Register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return l.Load(env)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	ld, err := load(t, []string{"--data", dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := ld.Config
	want := Config{
		DataDir: dir, WSAddr: ":22886", HTTPAddr: ":22887", LogLevel: "info",
		LogMaxSizeMB: 100, LogMaxBackups: 10, HandshakeTimeout: 10 * time.Second,
		IdleTimeout: 60 * time.Second, PingInterval: 25 * time.Second, MaxMessage: 64 << 10,
		MaxOutbound: 1 << 20, FDReserve: 400, CloseTimeout: 2 * time.Second, HTTPMaxConns: 256, HTTPMaxBody: 1 << 20, SignatureWindow: 5 * time.Minute, TokenTTL: 720 * time.Hour, MaxContent: 32 << 10, HistoryLimit: 50, MaxSessionsListed: 1000, GroupCreateRate: 20, GroupAddRate: 200, PresenceDebounce: 5 * time.Second,
		RecallWindow: 2 * time.Minute, EditWindow: 15 * time.Minute, MaxGroupMembers: 10000, GroupJoinHistory: true, DismissedReadable: true,
		JournalSize: 65536, CheckpointInterval: 5 * time.Second, ClusterName: "chatd", DiskWarnFree: 1 << 30, ShutdownTimeout: 30 * time.Second, Demo: "auto",
		SignatureAhead:    time.Minute,
		HTTPMaxConnsPerIP: 64, HTTPReservedConns: 16, HTTPHeaderTimeout: 10 * time.Second, HTTPBodyTimeout: 30 * time.Second,
		SendRate: 20, RequestRate: 100, MaxUserConns: 16,
		WebhookTimeout: 10 * time.Second, WebhookRetryFor: 24 * time.Hour, WebhookConcurrency: 4, WebhookOutboxMax: 100000,
		WebhookPushDebounce: 2 * time.Second, WebhookKeep: 168 * time.Hour,
		ConsultTick: 10 * time.Second, ConsultWarnings: []string{"5m", "1m", "10s"}, ConsultRounding: "minute",
		ConsultMaxPerConsultant: 10, ConsultPendingTTL: 30 * time.Minute,
		HTTPMaxPolls: 5000, HTTPPollsPerUser: 8, HTTPPollTimeout: 25 * time.Second, HTTPEventsKeep: 5 * time.Minute, HTTPEventsMax: 1000,
		UploadMaxImage: 10 << 20, UploadMaxVoice: 2 << 20, UploadMaxVideo: 50 << 20, UploadMaxFile: 50 << 20, UploadQuota: 10 << 30,
		UploadMaxConcurrent: 32, UploadTimeout: 10 * time.Minute, FileURLTTL: time.Hour, UploadGrace: 24 * time.Hour,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if got := c.LogPath(); got != filepath.Join(dir, "chatd.log") {
		t.Fatalf("LogPath = %q", got)
	}
	if ld.File != "" {
		t.Fatalf("File = %q, want none", ld.File)
	}
}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		name     string
		file     string // written to <data>/chatd.conf when non-empty
		env      []string
		args     []string
		wantAddr string
		wantFrom string
	}{
		{name: "default", wantAddr: ":22886", wantFrom: "default"},
		{name: "file over default", file: "ws_addr = 127.0.0.1:1001\n",
			wantAddr: "127.0.0.1:1001", wantFrom: "file "},
		{name: "env over file", file: "ws_addr = 127.0.0.1:1001\n", env: []string{"CHATD_WS_ADDR=127.0.0.1:1002"},
			wantAddr: "127.0.0.1:1002", wantFrom: "env CHATD_WS_ADDR"},
		{name: "flag over env", file: "ws_addr = 127.0.0.1:1001\n", env: []string{"CHATD_WS_ADDR=127.0.0.1:1002"},
			args: []string{"--ws-addr", "127.0.0.1:1003"}, wantAddr: "127.0.0.1:1003", wantFrom: "flag --ws-addr"},
		{name: "flag over default", args: []string{"--ws-addr=127.0.0.1:1003"},
			wantAddr: "127.0.0.1:1003", wantFrom: "flag --ws-addr"},
		{name: "last flag wins", args: []string{"--ws-addr=127.0.0.1:1", "--ws-addr=127.0.0.1:2"},
			wantAddr: "127.0.0.1:2", wantFrom: "flag --ws-addr"},
		{name: "empty env is unset", file: "ws_addr = 127.0.0.1:1001\n", env: []string{"CHATD_WS_ADDR="},
			wantAddr: "127.0.0.1:1001", wantFrom: "file "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.file != "" {
				writeFile(t, filepath.Join(dir, FileName), tt.file)
			}
			args := append([]string{"--data", dir}, tt.args...)
			ld, err := load(t, args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if ld.Config.WSAddr != tt.wantAddr {
				t.Errorf("WSAddr = %q, want %q", ld.Config.WSAddr, tt.wantAddr)
			}
			if !strings.HasPrefix(ld.From["ws_addr"], tt.wantFrom) {
				t.Errorf("From = %q, want prefix %q", ld.From["ws_addr"], tt.wantFrom)
			}
		})
	}
}

func TestConfigFileLocation(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) (args, env []string)
		want    string // expected http_addr
		wantErr string
	}{
		{
			name: "data folder file via env data dir",
			setup: func(t *testing.T, dir string) ([]string, []string) {
				writeFile(t, filepath.Join(dir, "d", FileName), "http_addr = 127.0.0.1:7\n")
				return nil, []string{"CHATD_DATA_DIR=" + filepath.Join(dir, "d")}
			},
			want: "127.0.0.1:7",
		},
		{
			name: "--config wins over the data folder file",
			setup: func(t *testing.T, dir string) ([]string, []string) {
				writeFile(t, filepath.Join(dir, "d", FileName), "http_addr = 127.0.0.1:7\n")
				writeFile(t, filepath.Join(dir, "other.conf"), "http_addr = 127.0.0.1:8\n")
				return []string{"--data", filepath.Join(dir, "d"), "--config", filepath.Join(dir, "other.conf")}, nil
			},
			want: "127.0.0.1:8",
		},
		{
			name: "CHATD_CONFIG names the file",
			setup: func(t *testing.T, dir string) ([]string, []string) {
				writeFile(t, filepath.Join(dir, "other.conf"), "http_addr = 127.0.0.1:9\n")
				return []string{"--data", dir}, []string{"CHATD_CONFIG=" + filepath.Join(dir, "other.conf")}
			},
			want: "127.0.0.1:9",
		},
		{
			name: "explicit file may set data_dir",
			setup: func(t *testing.T, dir string) ([]string, []string) {
				writeFile(t, filepath.Join(dir, "other.conf"), "data_dir = "+filepath.Join(dir, "x")+"\n")
				return []string{"--config", filepath.Join(dir, "other.conf")}, nil
			},
			want: ":22887",
		},
		{
			name: "missing explicit file is an error",
			setup: func(t *testing.T, dir string) ([]string, []string) {
				return []string{"--config", filepath.Join(dir, "nope.conf")}, nil
			},
			wantErr: "config file: open ",
		},
		{
			name: "data folder file may not move the data folder",
			setup: func(t *testing.T, dir string) ([]string, []string) {
				writeFile(t, filepath.Join(dir, FileName), "data_dir = /elsewhere\n")
				return []string{"--data", dir}, nil
			},
			wantErr: "data_dir cannot point elsewhere",
		},
		{
			name: "data folder file may repeat its own folder",
			setup: func(t *testing.T, dir string) ([]string, []string) {
				writeFile(t, filepath.Join(dir, FileName), "data_dir = "+dir+"\n")
				return []string{"--data", dir}, nil
			},
			want: ":22887",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, env := tt.setup(t, t.TempDir())
			ld, err := load(t, args, env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ld.Config.HTTPAddr != tt.want {
				t.Fatalf("HTTPAddr = %q, want %q", ld.Config.HTTPAddr, tt.want)
			}
		})
	}
}

func TestValidation(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		args    []string
		file    string
		wantErr string
	}{
		{name: "env duration", env: []string{"CHATD_IDLE_TIMEOUT=abc"}, wantErr: `CHATD_IDLE_TIMEOUT: invalid duration "abc"`},
		{name: "flag duration", args: []string{"--ping-interval=-5s"}, wantErr: `--ping-interval: invalid duration "-5s": must be greater than 0`},
		{name: "file duration", file: "\n\nhandshake_timeout = 10 parsecs\n", wantErr: `chatd.conf:3: invalid duration "10 parsecs"`},
		{name: "zero duration", env: []string{"CHATD_TOKEN_TTL=0s"}, wantErr: `CHATD_TOKEN_TTL: invalid duration "0s": must be greater than 0`},
		{name: "address without port", env: []string{"CHATD_WS_ADDR=localhost"}, wantErr: `CHATD_WS_ADDR: invalid address "localhost"`},
		{name: "address bad port", args: []string{"--http-addr", ":70000"}, wantErr: `--http-addr: invalid address ":70000": port must be 0-65535`},
		{name: "address word port", args: []string{"--http-addr", ":http"}, wantErr: `--http-addr: invalid address ":http"`},
		{name: "size unit", env: []string{"CHATD_MAX_MESSAGE=64XB"}, wantErr: `CHATD_MAX_MESSAGE: invalid size "64XB": unknown unit "xb"`},
		{name: "size zero", env: []string{"CHATD_MAX_OUTBOUND=0"}, wantErr: `CHATD_MAX_OUTBOUND: invalid size "0": must be greater than 0`},
		{name: "size not a number", env: []string{"CHATD_MAX_CONTENT=lots"}, wantErr: `CHATD_MAX_CONTENT: invalid size "lots"`},
		{name: "int negative", env: []string{"CHATD_MAX_CONNS=-1"}, wantErr: `CHATD_MAX_CONNS: invalid number "-1"`},
		{name: "int below min", args: []string{"--history-limit=0"}, wantErr: `--history-limit: invalid number "0": must be at least 1`},
		{name: "bool", env: []string{"CHATD_ECHO_FIRST_PROTOCOL=maybe"}, wantErr: `CHATD_ECHO_FIRST_PROTOCOL: invalid boolean "maybe"`},
		{name: "level", env: []string{"CHATD_LOG_LEVEL=loud"}, wantErr: `CHATD_LOG_LEVEL: invalid level "loud"`},
		{name: "origin", env: []string{"CHATD_ALLOWED_ORIGINS=https://ok.example,shop.example"}, wantErr: `CHATD_ALLOWED_ORIGINS: invalid origin "shop.example"`},
		{name: "origin with path", env: []string{"CHATD_ALLOWED_ORIGINS=https://a.example/chat"}, wantErr: `invalid origin "https://a.example/chat"`},
		{name: "proxy", env: []string{"CHATD_TRUSTED_PROXIES=10.0.0.0/33"}, wantErr: `CHATD_TRUSTED_PROXIES: invalid proxy "10.0.0.0/33"`},
		{name: "proxy host name", args: []string{"--trusted-proxies=lb.local"}, wantErr: `--trusted-proxies: invalid proxy "lb.local"`},
		{name: "subprotocol", env: []string{"CHATD_SUBPROTOCOLS=chat v1"}, wantErr: `CHATD_SUBPROTOCOLS: invalid subprotocol "chat v1"`},
		{name: "short admin key", env: []string{"CHATD_ADMIN_KEY=hunter2"}, wantErr: `CHATD_ADMIN_KEY: too short`},
		{name: "empty data dir flag", args: []string{"--data="}, wantErr: `--data: must not be empty`},
		{name: "ping not under idle", env: []string{"CHATD_PING_INTERVAL=60s"}, wantErr: `ping_interval (1m0s) must be shorter than idle_timeout (1m0s)`},
		{name: "content over message", args: []string{"--max-content=1MiB"}, wantErr: `max_content (1048576) must not exceed max_message (65536)`},
		{name: "history limit over max page", env: []string{"CHATD_HISTORY_LIMIT=501"}, wantErr: `history_limit (501) must be at most 500`},
		{name: "token ttl over a year", env: []string{"CHATD_TOKEN_TTL=8761h"}, wantErr: `token_ttl (8761h0m0s) must be at most 8760h (365 days)`},
		{name: "outbound over 1GiB", args: []string{"--max-outbound=2GiB"}, wantErr: `max_outbound (2147483648) must be at most 1GiB`},
		{name: "message over 1GiB", args: []string{"--max-message=2GiB", "--max-content=1KiB"}, wantErr: `max_message (2147483648) must be at most 1GiB`},
		{name: "file unknown key", file: "ws_adr = :1\n", wantErr: `chatd.conf:1: unknown setting "ws_adr"`},
		{name: "file no equals", file: "# ok\nws_addr :1\n", wantErr: `chatd.conf:2: want key = value`},
		{name: "file duplicate", file: "ws_addr = :1\nws_addr = :2\n", wantErr: `chatd.conf:2: ws_addr already set on line 1`},
		{name: "file open quote", file: "admin_key = \"abc\n", wantErr: `chatd.conf:1: admin_key: missing closing quote`},
		{name: "unknown flag", args: []string{"--nope=1"}, wantErr: `flag provided but not defined: -nope`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.file != "" {
				writeFile(t, filepath.Join(dir, FileName), tt.file)
			}
			_, err := load(t, append([]string{"--data", dir}, tt.args...), tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestValues(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, FileName), strings.Join([]string{
		"# a comment",
		"",
		"  log_level = DEBUG   # inline comment",
		"allowed_origins = https://shop.example, https://m.shop.example:8443 ,",
		`admin_key = "  0123456789abcdef0123456789abcdef #x"`,
		"max_message = 1 MiB",
		"echo_first_protocol = yes\r",
	}, "\n"))
	ld, err := load(t, []string{"--data", dir, "--echo-first-protocol=false", "--trusted-proxies", "10.0.0.0/8,::1",
		"--subprotocols", "chatd.v1,json", "--max-content", "65536", "--log-file", "rel.log"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := ld.Config
	wd, _ := os.Getwd()
	checks := []struct {
		name      string
		got, want any
	}{
		{name: "level lowercased", got: c.LogLevel, want: "debug"},
		{name: "origins trimmed", got: c.AllowedOrigins, want: []string{"https://shop.example", "https://m.shop.example:8443"}},
		{name: "quoted value kept whole", got: c.AdminKey, want: "  0123456789abcdef0123456789abcdef #x"},
		{name: "size with space", got: c.MaxMessage, want: 1 << 20},
		{name: "flag bool overrides file", got: c.EchoFirstProtocol, want: false},
		{name: "proxies", got: c.TrustedProxies, want: []string{"10.0.0.0/8", "::1"}},
		{name: "subprotocols", got: c.Subprotocols, want: []string{"chatd.v1", "json"}},
		{name: "plain byte size", got: c.MaxContent, want: 65536},
		{name: "log file made absolute", got: c.LogFile, want: filepath.Join(wd, "rel.log")},
		{name: "file recorded", got: ld.File, want: filepath.Join(dir, FileName)},
		{name: "source of level", got: ld.From["log_level"], want: "file " + filepath.Join(dir, FileName) + ":3"},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s: got %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
}

func TestBareBoolFlag(t *testing.T) {
	ld, err := load(t, []string{"--data", t.TempDir(), "--admin-from-anywhere"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ld.Config.AdminFromAnywhere {
		t.Fatal("--admin-from-anywhere did not set AdminFromAnywhere")
	}
}

func TestRelativeDataDir(t *testing.T) {
	ld, err := load(t, []string{"--data", "some/rel"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if want := filepath.Join(wd, "some/rel"); ld.Config.DataDir != want {
		t.Fatalf("DataDir = %q, want %q", ld.Config.DataDir, want)
	}
}

func TestUnknownEnvWarns(t *testing.T) {
	ld, err := load(t, []string{"--data", t.TempDir()},
		[]string{"CHATD_WS_ADR=:1", "CHATD_HTTP=http://127.0.0.1:1", "CHATD_CONFIG=", "PATH=/bin"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"CHATD_WS_ADR: unknown setting, ignored"}
	if !reflect.DeepEqual(ld.Warnings, want) {
		t.Fatalf("Warnings = %q, want %q", ld.Warnings, want)
	}
}

// TestWriteRoundTrip checks that `chatd config` output hides secrets and,
// with the secret filled back in, loads to the same Config.
func TestWriteRoundTrip(t *testing.T) {
	dir := t.TempDir()
	key := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	ld, err := load(t, []string{"--data", dir, "--ws-addr", "127.0.0.1:0", "--allowed-origins", "https://a.example,*"},
		[]string{"CHATD_ADMIN_KEY=" + key, "CHATD_IDLE_TIMEOUT=90s"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ld.Write(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, key) {
		t.Fatalf("output shows the admin key:\n%s", out)
	}
	for _, want := range []string{`admin_key `, `= ***`, "token_ttl           = 720h ", "# env CHATD_ADMIN_KEY", "idle_timeout", "1m30s", "# flag --ws-addr", "# default"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	file := filepath.Join(t.TempDir(), "round.conf")
	writeFile(t, file, strings.Replace(out, "***", key, 1))
	again, err := load(t, []string{"--config", file}, nil)
	if err != nil {
		t.Fatalf("reloading the printed config: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(again.Config, ld.Config) {
		t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", again.Config, ld.Config)
	}
}

func TestEmptySecretDisplay(t *testing.T) {
	c := Default()
	s := lookup("admin_key")
	if got := s.Display(&c); got != "" {
		t.Fatalf("unset secret displays as %q, want empty", got)
	}
}

func TestPrintFlagsListsEverySetting(t *testing.T) {
	var buf bytes.Buffer
	PrintFlags(&buf)
	out := buf.String()
	for _, s := range Settings() {
		for _, want := range []string{"--" + s.Flag(), s.Env(), s.Usage} {
			if !strings.Contains(out, want) {
				t.Errorf("help lacks %q", want)
			}
		}
	}
	if !strings.Contains(out, "--data-dir, --data") {
		t.Errorf("help lacks the --data alias:\n%s", out)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
		err  bool
	}{
		{name: "bytes", in: "100", want: 100},
		{name: "k", in: "2k", want: 2048},
		{name: "KiB", in: "64KiB", want: 64 << 10},
		{name: "MB is binary", in: "3MB", want: 3 << 20},
		{name: "GiB", in: "1GiB", want: 1 << 30},
		{name: "b suffix", in: "7B", want: 7},
		{name: "overflow", in: "99999999GiB", err: true},
		{name: "fraction", in: "1.5MiB", err: true},
		{name: "empty", in: "", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSize(tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Fatalf("parseSize(%q) = %d, %v", tt.in, got, err)
			}
		})
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		name string
		in   int
		want string
	}{
		{name: "zero", in: 0, want: "0"},
		{name: "odd", in: 1000, want: "1000"},
		{name: "KiB", in: 3 << 10, want: "3KiB"},
		{name: "MiB", in: 4 << 20, want: "4MiB"},
		{name: "GiB", in: 2 << 30, want: "2GiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatSize(tt.in); got != tt.want {
				t.Fatalf("formatSize(%d) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		name string
		in   time.Duration
		want string
	}{
		{name: "hours", in: 720 * time.Hour, want: "720h"},
		{name: "hours and minutes", in: 90 * time.Minute, want: "1h30m"},
		{name: "minutes", in: 5 * time.Minute, want: "5m"},
		{name: "minutes and seconds", in: 90 * time.Second, want: "1m30s"},
		{name: "seconds", in: 25 * time.Second, want: "25s"},
		{name: "hour and seconds", in: time.Hour + time.Second, want: "1h0m1s"},
		{name: "millis", in: 1500 * time.Millisecond, want: "1.5s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatDuration(tt.in); got != tt.want {
				t.Fatalf("formatDuration(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestOrigins(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{name: "empty allows all", in: nil, want: nil},
		{name: "star allows all", in: []string{"https://a.example", "*"}, want: nil},
		{name: "list kept", in: []string{"https://a.example"}, want: []string{"https://a.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{AllowedOrigins: tt.in}
			if got := c.Origins(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Origins = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTrustedPrefixes(t *testing.T) {
	c := Config{TrustedProxies: []string{"10.1.2.3/8", "192.168.0.7", "::1"}}
	var got []string
	for _, p := range c.TrustedPrefixes() {
		got = append(got, p.String())
	}
	want := []string{"10.0.0.0/8", "192.168.0.7/32", "::1/128"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("TrustedPrefixes = %q, want %q", got, want)
	}
}

func TestSecretArgs(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	tests := []struct {
		name     string
		args     []string
		redacted []string
		stripped []string
	}{
		{name: "separate value", args: []string{"--data", "d", "--admin-key", key, "--loops", "2"},
			redacted: []string{"--data", "d", "--admin-key", "***", "--loops", "2"},
			stripped: []string{"--data", "d", "--loops", "2"}},
		{name: "inline value, one dash", args: []string{"-admin-key=" + key, "--wait", "5s"},
			redacted: []string{"-admin-key=***", "--wait", "5s"},
			stripped: []string{"--wait", "5s"}},
		{name: "given twice", args: []string{"--admin-key=" + key, "--admin-key", key},
			redacted: []string{"--admin-key=***", "--admin-key", "***"},
			stripped: nil},
		{name: "after the terminator", args: []string{"--", "--admin-key", key},
			redacted: []string{"--", "--admin-key", key},
			stripped: []string{"--", "--admin-key", key}},
		{name: "no secrets", args: []string{"--data", "d"},
			redacted: []string{"--data", "d"},
			stripped: []string{"--data", "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RedactArgs(tt.args); !reflect.DeepEqual(got, tt.redacted) {
				t.Errorf("RedactArgs = %q, want %q", got, tt.redacted)
			}
			if got := StripSecretArgs(tt.args); !reflect.DeepEqual(got, tt.stripped) {
				t.Errorf("StripSecretArgs = %q, want %q", got, tt.stripped)
			}
		})
	}
}

func TestReservedPrefixes(t *testing.T) {
	if got := (&Config{}).ReservedPrefixes(); got != nil {
		t.Fatalf("empty http_reserved_peers: %v, want nil (loopback)", got)
	}
	c := Config{HTTPReservedPeers: []string{"10.0.0.0/8", "192.0.2.7", "::1"}}
	var got []string
	for _, p := range c.ReservedPrefixes() {
		got = append(got, p.String())
	}
	if want := []string{"10.0.0.0/8", "192.0.2.7/32", "::1/128"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ReservedPrefixes = %q, want %q", got, want)
	}
	if err := apply(&c, "http_reserved_peers", "10.0.0.0/8, health-checker", "test"); err == nil {
		t.Fatal("a host name in http_reserved_peers was accepted")
	}
}
