//go:build linux

package reactor

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const floodChildEnv = "REACTOR_FD_FLOOD_CHILD"

// TestFDLimitFlood runs a server in a child process whose open-file limit
// is 256 and floods it with 400 connections. Without the cap, accept(2)
// would fail with EMFILE and gnet would stop the whole engine; with the
// default cap (limit minus FDReserve) the excess is refused and the server
// keeps serving.
func TestFDLimitFlood(t *testing.T) {
	if os.Getenv(floodChildEnv) == "1" {
		floodChild()
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFDLimitFlood$", "-test.count=1")
	cmd.Env = append(os.Environ(), floodChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("child did not exit")
		}
	}()
	br := bufio.NewReader(stdout)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "addr ") {
		t.Fatalf("child said %q, %v", line, err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "addr "))
	go io.Copy(io.Discard, br)

	// Flood: 400 connections, each sending an upgrade request.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	upgraded := 0
	for i := 0; i < 400; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, upgradeRequest(addr))
		status, _ := bufio.NewReader(c).ReadString('\n')
		if strings.HasPrefix(status, "HTTP/1.1 101 ") {
			upgraded++
		}
		c.SetDeadline(time.Time{})
	}
	select {
	case err := <-exited:
		t.Fatalf("server process died during the flood: %v", err)
	default:
	}
	if upgraded == 0 || upgraded > 256-64 {
		t.Fatalf("%d of 400 upgraded; want at most the cap, 256 - FDReserve 64", upgraded)
	}
	t.Logf("%d of 400 connections upgraded under a 256-fd limit", upgraded)

	// Free everything; the server must still accept and serve.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	time.Sleep(200 * time.Millisecond)
	c := dial(t, addr)
	c.echo(t, "the engine survived")
}

// floodChild is the child side: a server with a 256-file limit, running
// until stdin closes.
func floodChild() {
	lim := unix.Rlimit{Cur: 256, Max: 256}
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err == nil && cur.Max < lim.Max {
		lim.Max = cur.Max
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Println("setrlimit:", err)
		os.Exit(1)
	}
	s, err := New(Config{Addr: "127.0.0.1:0", Loops: 2, FDReserve: 64}, echoCore(), testLoggerStderr())
	if err != nil {
		fmt.Println("new:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		fmt.Println("run:", err)
		os.Exit(1)
	}
	fmt.Println("addr", s.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "child run:", err)
		os.Exit(1)
	}
	os.Exit(0)
}
