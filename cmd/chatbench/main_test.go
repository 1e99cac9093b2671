package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"chatd/internal/proc"
)

func TestUsageAndBadInvocations(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "no arguments", args: nil, wantCode: exitError, wantStderr: "Usage:"},
		{name: "help", args: []string{"help"}, wantCode: exitOK, wantStdout: "chatbench connect [flags]"},
		{name: "scenario -h", args: []string{"p2p", "-h"}, wantCode: exitOK, wantStdout: "--pairs N"},
		{name: "unknown command", args: []string{"flood"}, wantCode: exitError, wantStderr: `unknown command "flood"`},
		{name: "unknown flag", args: []string{"connect", "--bogus"}, wantCode: exitError, wantStderr: "flag provided but not defined: -bogus"},
		{name: "flag of another scenario", args: []string{"connect", "--pairs", "3"}, wantCode: exitError, wantStderr: "-pairs"},
		{name: "stray argument", args: []string{"connect", "extra"}, wantCode: exitError, wantStderr: `unexpected argument "extra"`},
		{name: "bad duration", args: []string{"p2p", "--duration", "0s", "--admin-key", "k"}, wantCode: exitError, wantStderr: "--duration"},
		{name: "no admin key", args: []string{"connect", "--data", "/nonexistent/chatbench-test"}, wantCode: exitError, wantStderr: "no admin key"},
		{name: "remote target refused", args: []string{"connect", "--ws", "192.0.2.1:22886", "--http", "192.0.2.1:22887", "--admin-key", "k", "--quiet"},
			wantCode: exitError, wantStderr: "--allow-remote"},
		{name: "bad sources", args: []string{"connect", "--sources", "127.0.0.9-127.0.0.1", "--admin-key", "k", "--ws", "127.0.0.1:1", "--http", "127.0.0.1:1"},
			wantCode: exitError, wantStderr: "--sources"},
		{name: "--ws and --ws-addrs", args: []string{"p2p", "--ws", "127.0.0.1:1", "--ws-addrs", "127.0.0.1:1,127.0.0.1:2", "--admin-key", "k"},
			wantCode: exitError, wantStderr: "give --ws or --ws-addrs, not both"},
		{name: "--ws-addrs empty item", args: []string{"p2p", "--ws-addrs", "127.0.0.1:1,,127.0.0.1:2", "--admin-key", "k"},
			wantCode: exitError, wantStderr: "--ws-addrs: item 2 is empty"},
		{name: "--ws-addrs remote refused", args: []string{"p2p", "--ws-addrs", "127.0.0.1:1,192.0.2.1:2", "--http", "127.0.0.1:1", "--admin-key", "k", "--quiet"},
			wantCode: exitError, wantStderr: "--allow-remote"},
		{name: "--place without --ws-addrs", args: []string{"p2p", "--place", "together", "--admin-key", "k"},
			wantCode: exitError, wantStderr: "give --ws-addrs too"},
		{name: "--place unknown", args: []string{"p2p", "--ws-addrs", "127.0.0.1:1,127.0.0.1:2", "--http", "127.0.0.1:1", "--place", "pairs", "--admin-key", "k", "--quiet"},
			wantCode: exitError, wantStderr: `--place "pairs": want spread or together`},
		{name: "--place together for churn", args: []string{"churn", "--ws-addrs", "127.0.0.1:1,127.0.0.1:2", "--http", "127.0.0.1:1", "--place", "together", "--admin-key", "k", "--quiet"},
			wantCode: exitError, wantStderr: "--place together is for p2p and group"},
		{name: "odd churn", args: []string{"churn", "-n", "3", "--admin-key", "k"}, wantCode: exitError, wantStderr: "even number"},
		{name: "probe in the help", args: []string{"help"}, wantCode: exitOK, wantStdout: "chatbench probe [flags]"},
		{name: "probe: unknown part", args: []string{"probe", "--parts", "disk,gpu"}, wantCode: exitError, wantStderr: `unknown part "gpu"`},
		{name: "probe: no parts", args: []string{"probe", "--parts", " , "}, wantCode: exitError, wantStderr: "--parts is empty"},
		{name: "probe: zero rate", args: []string{"probe", "--rate", "0"}, wantCode: exitError, wantStderr: "must be positive"},
		{name: "probe: depth too large", args: []string{"probe", "--depth", "65"}, wantCode: exitError, wantStderr: "--depth must be 1 to 64"},
		{name: "probe: missing folder", args: []string{"probe", "--parts", "disk", "--dir", "/nonexistent/chatbench-probe"},
			wantCode: exitError, wantStderr: "/nonexistent/chatbench-probe is not a folder"},
		{name: "stall sampler: bad tick", args: []string{stallSamplerCmd, "soon"}, wantCode: exitError, wantStderr: `bad tick "soon"`},
		{name: "probe: scenario flag", args: []string{"probe", "--pairs", "3"}, wantCode: exitError, wantStderr: "-pairs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CHATD_ADMIN_KEY", "")
			var out, errb bytes.Buffer
			code := run(context.Background(), tt.args, &out, &errb)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, errb.String())
			}
			if tt.wantStdout != "" && !strings.Contains(out.String(), tt.wantStdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantStdout, out.String())
			}
			if tt.wantStderr != "" && !strings.Contains(errb.String(), tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, errb.String())
			}
		})
	}
}

// TestProbeJSON runs `chatbench probe` for real: no server, one JSON line
// on stdout, the table on stderr, the scratch file in the data folder and
// gone afterwards.
func TestProbeJSON(t *testing.T) {
	data := t.TempDir()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"probe", "--data", data, "--duration", "300ms", "--rate", "1000", "--json", "--quiet"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errb.String())
	}
	var rep struct {
		Scenario string `json:"scenario"`
		Params   struct {
			Parts []string `json:"parts"`
			Dir   string   `json:"dir"`
		} `json:"params"`
		Stalls *struct {
			Wakes int64 `json:"wakes"`
		} `json:"stalls"`
		Disk *struct {
			File    string `json:"file"`
			Records int64  `json:"records"`
		} `json:"disk"`
		Loopback *struct {
			RoundTrip struct {
				Count int64 `json:"count"`
			} `json:"round_trip"`
		} `json:"loopback"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not one JSON report: %v\n%s", err, out.String())
	}
	if rep.Scenario != "probe" || strings.Join(rep.Params.Parts, ",") != "stalls,disk,loopback" || rep.Params.Dir != data {
		t.Errorf("report %+v", rep)
	}
	if rep.Stalls == nil || rep.Stalls.Wakes == 0 || rep.Disk == nil || rep.Disk.Records != 300 || rep.Loopback == nil || rep.Loopback.RoundTrip.Count == 0 {
		t.Errorf("a part measured nothing: stalls %+v disk %+v loopback %+v", rep.Stalls, rep.Disk, rep.Loopback)
	}
	if rep.Disk != nil && filepath.Dir(rep.Disk.File) != data {
		t.Errorf("scratch file %s, want it in the data folder %s", rep.Disk.File, data)
	}
	if left, _ := filepath.Glob(filepath.Join(data, "*")); len(left) != 0 {
		t.Errorf("left in the data folder: %v", left)
	}
	if !strings.Contains(errb.String(), "arrival → durable") {
		t.Errorf("no table on stderr:\n%s", errb.String())
	}
}

func TestResolveReadsTheDataFolder(t *testing.T) {
	tests := []struct {
		name      string
		runFile   string // chatd.run content; empty: none
		key       string // admin.key content; empty: none
		env       string
		flags     common
		wantWS    string
		wantAddrs string // Target.WSAddrs joined with ","
		wantHTTP  string
		wantKey   string
		wantState string // relative to the data folder; "-" for none
	}{
		{
			name:    "addresses from chatd.run, key from admin.key",
			runFile: `{"pid":1,"ws_addr":"[::]:5000","http_addr":"127.0.0.3:5001"}`, key: strings.Repeat("ab", 32) + "\n",
			wantWS: "127.0.0.1:5000", wantHTTP: "127.0.0.3:5001", wantKey: strings.Repeat("ab", 32), wantState: "chatbench.json",
		},
		{
			name: "defaults without chatd.run; key from the environment",
			env:  "envkey", wantWS: "127.0.0.1:22886", wantHTTP: "127.0.0.1:22887", wantKey: "envkey", wantState: "chatbench.json",
		},
		{
			name: "flags win", runFile: `{"pid":1,"ws_addr":"127.0.0.1:1","http_addr":"127.0.0.1:2"}`, key: strings.Repeat("cd", 32),
			flags:  common{ws: "ws://127.0.0.2:7/x", http: "127.0.0.2:8", adminKey: "flagkey", state: "none"},
			wantWS: "ws://127.0.0.2:7/x", wantHTTP: "127.0.0.2:8", wantKey: "flagkey", wantState: "-",
		},
		{
			name:    "--ws-addrs: the WebSocket addresses from the list, HTTP from chatd.run",
			runFile: `{"pid":1,"ws_addr":"127.0.0.1:1","http_addr":"127.0.0.1:2"}`, key: strings.Repeat("cd", 32),
			flags:  common{wsAddrs: " 127.0.0.1:5000, 127.0.0.1:5010,127.0.0.1:5020"},
			wantWS: "127.0.0.1:5000", wantAddrs: "127.0.0.1:5000,127.0.0.1:5010,127.0.0.1:5020", wantHTTP: "127.0.0.1:2",
			wantKey: strings.Repeat("cd", 32), wantState: "chatbench.json",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.runFile != "" {
				os.WriteFile(filepath.Join(dir, "chatd.run"), []byte(tt.runFile), 0o600)
			}
			if tt.key != "" {
				os.WriteFile(filepath.Join(dir, "admin.key"), []byte(tt.key), 0o600)
			}
			t.Setenv("CHATD_ADMIN_KEY", tt.env)
			c := tt.flags
			c.data = dir
			c.duration, c.drain, c.connectTO, c.dialConc = time.Second, time.Second, time.Second, 1
			c.o.Window, c.o.Size, c.o.Workers = 1, 1, 1
			c.quiet = true
			if err := c.resolve(os.Stderr); err != nil {
				t.Fatal(err)
			}
			if c.o.Target.WS != tt.wantWS || c.o.Target.HTTP != tt.wantHTTP || c.o.Target.AdminKey != tt.wantKey {
				t.Errorf("target %+v, want ws %q http %q key %q", c.o.Target, tt.wantWS, tt.wantHTTP, tt.wantKey)
			}
			if got := strings.Join(c.o.Target.WSAddrs, ","); got != tt.wantAddrs {
				t.Errorf("ws addrs %q, want %q", got, tt.wantAddrs)
			}
			wantState := ""
			if tt.wantState != "-" {
				wantState = filepath.Join(dir, tt.wantState)
			}
			if c.o.StatePath != wantState {
				t.Errorf("state %q, want %q", c.o.StatePath, wantState)
			}
		})
	}
}

// TestJSONRunAgainstChatd runs the command end to end against a real
// chatd: the JSON line on stdout, the table on stderr, exit status 0.
func TestJSONRunAgainstChatd(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	bin := os.Getenv("CHATBENCH_CHATD") // a prebuilt chatd, else build one
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "chatd")
		build := exec.Command("go", "build", "-o", bin, "chatd/cmd/chatd")
		if out, err := build.CombinedOutput(); err != nil {
			t.Skipf("./cmd/chatd does not build yet: %s", out)
		}
	}
	data := t.TempDir()
	srv := exec.Command(bin, "--data", data, "--ws-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn")
	var log bytes.Buffer
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if runtime.GOOS == "windows" {
			srv.Process.Kill()
		} else {
			srv.Process.Signal(syscall.SIGTERM)
		}
		srv.Wait()
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		ri, err := proc.ReadRunInfo(data)
		if err == nil && ri.PID == srv.Process.Pid {
			break
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("chatd not ready; log:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Setenv("CHATD_ADMIN_KEY", "")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"p2p", "--data", data, "--pairs", "5", "--rate", "100", "--duration", "1s", "--json"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("stdout has %d lines, want one JSON line:\n%s", len(lines), out.String())
	}
	var rep struct {
		Scenario string `json:"scenario"`
		OK       bool   `json:"ok"`
		Params   struct {
			Pairs int     `json:"pairs"`
			Rate  float64 `json:"rate"`
		} `json:"params"`
		Messages struct {
			Acked     int64 `json:"acked"`
			Delivered int64 `json:"delivered"`
		} `json:"messages"`
		HostStalls *struct {
			Wakes int64 `json:"wakes"`
		} `json:"host_stalls"`
		Notes []string `json:"notes"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &rep); err != nil {
		t.Fatal(err)
	}
	// The stall sampler ran as a process of its own (this binary, see
	// TestMain) through the run's second or so.
	if rep.HostStalls == nil || rep.HostStalls.Wakes < 100 {
		t.Errorf("host stalls %+v, notes %q: want the sampler process's wake-ups", rep.HostStalls, rep.Notes)
	}
	if rep.Scenario != "p2p" || !rep.OK || rep.Params.Pairs != 5 || rep.Params.Rate != 100 || rep.Messages.Acked != 100 || rep.Messages.Delivered != 100 {
		t.Errorf("report %+v", rep)
	}
	if !strings.Contains(errb.String(), "chatbench p2p: OK") || !strings.Contains(errb.String(), "send → delivery") {
		t.Errorf("stderr lacks the table:\n%s", errb.String())
	}
	if _, err := os.Stat(filepath.Join(data, "chatbench.json")); err != nil {
		t.Errorf("state file not kept in the data folder: %v", err)
	}
	// cleanup revokes what the run made.
	out.Reset()
	if code := run(context.Background(), []string{"cleanup", "--data", data}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "revoked the tokens of 10 users") {
		t.Errorf("cleanup: exit %d, stdout %q", code, out.String())
	}
}
