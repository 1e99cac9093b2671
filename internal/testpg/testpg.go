//go:build linux

// Package testpg runs a throw-away PostgreSQL server for tests: initdb in
// a temporary folder, postgres on a free loopback port, every change
// unsynced (fsync=off: nothing here must survive a crash), removed at the
// end. Only tests import it.
//
// A test binary shares one server, started on first use; its TestMain
// calls Main so that the server is stopped when the tests end:
//
//	func TestMain(m *testing.M) { testpg.Main(m) }
//
//	func TestX(t *testing.T) {
//		dsn := testpg.DSN(t) // a fresh, empty database, dropped when t ends
//	}
//
// A test that needs a server of its own (to stop it, say) calls Start.
//
// PostgreSQL's binaries are looked for in $CHATD_PG_BIN, then
// /usr/lib/postgresql/<newest>/bin (Debian's postgresql package), then
// $PATH. Without them the tests skip, unless CHATD_REQUIRE_INTEROP=1 (set
// in CI by .ci/run), where they fail. initdb refuses to run as root: as
// root the server runs as the postgres user (created by Debian's package)
// in a folder it owns.
package testpg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running throw-away PostgreSQL cluster.
type Server struct {
	dir  string // the temporary folder: data/, the socket, postgres.log
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when postgres has exited
	n    atomic.Int64  // databases created, for their names

	stopOnce sync.Once
	stopErr  error
}

var shared struct {
	mu  sync.Mutex // guards srv and err
	srv *Server
	err error
}

// Main runs the tests of m and then stops the shared server, if a test
// started it. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	srv := shared.srv
	shared.mu.Unlock()
	if srv != nil {
		if err := srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "testpg:", err)
		}
	}
	os.Exit(code)
}

// DSN returns the URL of a new, empty database on the shared server,
// which the first call starts; the database is dropped when t ends. The
// shared server is stopped by Main, so only packages whose TestMain calls
// Main may use it; others use Start.
func DSN(t testing.TB) string {
	t.Helper()
	shared.mu.Lock()
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = start()
	}
	srv, err := shared.srv, shared.err
	shared.mu.Unlock()
	if err != nil {
		unavailable(t, err)
	}
	return srv.NewDatabase(t)
}

// Start starts a server for t alone, stopped and removed when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	srv, err := start()
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	return srv
}

// errMissing means PostgreSQL is not installed.
var errMissing = errors.New("PostgreSQL's initdb not found (install Debian's postgresql package, or set CHATD_PG_BIN)")

// unavailable skips t when PostgreSQL is missing, and fails it when the
// server could not start or CHATD_REQUIRE_INTEROP=1 (CI).
func unavailable(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, errMissing) && os.Getenv("CHATD_REQUIRE_INTEROP") != "1" {
		t.Skip("testpg:", err)
	}
	t.Fatal("testpg:", err)
}

// binDir finds the folder of initdb and postgres.
func binDir() (string, error) {
	if d := os.Getenv("CHATD_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errMissing
}

// version is the major version in /usr/lib/postgresql/<v>/bin.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// owner is who runs initdb and postgres: nil for this process's user,
// or the postgres user when this process is root.
func owner() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and initdb refuses root: need the postgres user (Debian's postgresql package creates it): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := owner()
	if err != nil {
		return nil, err
	}
	base := os.TempDir()
	if cred != nil {
		base = "/tmp" // the postgres user must reach it; $TMPDIR may be private
	}
	dir, err := os.MkdirTemp(base, "chatd-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir}
	if err := s.initdb(bin, cred); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// A free port can be taken between asking and binding: try again.
	for attempt := 0; ; attempt++ {
		err = s.run(bin, cred)
		if err == nil || attempt == 2 {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func (s *Server) initdb(bin string, cred *syscall.Credential) error {
	if cred != nil {
		if err := os.Chown(s.dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return err
		}
	}
	cmd := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(s.dir, "data"), "-U", "postgres",
		"-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	return nil
}

// run starts postgres on a free port and waits until it takes
// connections.
func (s *Server) run(bin string, cred *syscall.Credential) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	logf, err := os.OpenFile(filepath.Join(s.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", filepath.Join(s.dir, "data"),
		"-p", strconv.Itoa(s.port), "-h", "127.0.0.1", "-k", s.dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "log_min_messages=warning")
	s.cmd.Dir = s.dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// Pdeathsig: a test binary that dies takes its postgres along.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.url("postgres"))
		cancel()
		if err == nil {
			c.Close(context.Background())
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("postgres exited at start: %s", s.log())
		default:
		}
		if time.Now().After(deadline) {
			s.cmd.Process.Kill()
			<-s.done
			return fmt.Errorf("postgres not ready in 60s: %v\n%s", err, s.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	return strings.TrimSpace(string(b))
}

func (s *Server) url(db string) string {
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(s.port) + "/" + db + "?sslmode=disable"
}

// Port is the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// NewDatabase creates an empty database and returns its URL; it is
// dropped when t ends (connections still open to it are ended).
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := "t" + strconv.FormatInt(s.n.Add(1), 10)
	if err := s.admin("CREATE DATABASE " + name); err != nil {
		t.Fatal("testpg:", err)
	}
	t.Cleanup(func() {
		if err := s.admin("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			t.Error("testpg:", err)
		}
	})
	return s.url(name)
}

// admin runs one statement on the postgres database.
func (s *Server) admin(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, sql)
	return err
}

// Stop stops the server (a fast shutdown: sessions are ended) and
// removes its folder. It is idempotent.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
			s.stopErr = errors.New("testpg: postgres did not stop in 30s; killed")
		}
		if err := os.RemoveAll(s.dir); err != nil && s.stopErr == nil {
			s.stopErr = err
		}
	})
	return s.stopErr
}
