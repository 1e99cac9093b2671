// Package proc is chatd's process life: the data folder's lock, pid and run
// files, the admin key, starting a detached daemon, stopping and probing a
// running server, and running the server's components in order and
// stopping them in reverse.
//
// Files in the data folder:
//
//	chatd.lock  held with an OS file lock for the server's lifetime (never deleted)
//	chatd.pid   the running server's pid (removed on a clean exit)
//	chatd.run   JSON RunInfo, written once the server is ready (removed on exit)
//	admin.key   the server admin key, 64 hex digits, mode 0600
//	chatd.log   daemon JSON log lines (rotated)
//	chatd.out   daemon stdout/stderr: early errors and crash output
package proc

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// File names inside the data folder.
const (
	LockFile     = "chatd.lock"
	PIDFile      = "chatd.pid"
	RunFile      = "chatd.run"
	AdminKeyFile = "admin.key"
	OutFile      = "chatd.out"
)

// PrepareDataDir creates the data folder (mode 0700) if it does not exist.
// An existing folder's mode is left alone.
func PrepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	return nil
}

// adminKeyBytes is the admin key's entropy; the file holds it hex-encoded.
const adminKeyBytes = 32

// EnsureAdminKey returns the admin key stored in dir, creating it (32
// random bytes as hex, mode 0600) when the file does not exist. created
// reports whether this call made it.
func EnsureAdminKey(dir string) (key string, created bool, err error) {
	path := filepath.Join(dir, AdminKeyFile)
	key, err = ReadAdminKey(dir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	var b [adminKeyBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, fmt.Errorf("admin key: %w", err)
	}
	key = hex.EncodeToString(b[:])
	// O_EXCL: if another process created it first, use theirs.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		key, err = ReadAdminKey(dir)
		return key, false, err
	}
	if err != nil {
		return "", false, fmt.Errorf("admin key: %w", err)
	}
	_, werr := f.WriteString(key + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(path)
		return "", false, fmt.Errorf("admin key: write %s: %w", path, err)
	}
	return key, true, nil
}

// ReadAdminKey reads dir's admin key file. A missing file is an error
// wrapping fs.ErrNotExist.
func ReadAdminKey(dir string) (string, error) {
	path := filepath.Join(dir, AdminKeyFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin key: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if len(key) < 32 || strings.ContainsAny(key, " \t\r\n") {
		return "", fmt.Errorf("admin key: %s does not hold a key (want one line of at least 32 characters)", path)
	}
	return key, nil
}

// AdminKeyTooOpen reports whether the admin key file can be read by other
// users (Unix permission bits; always false on Windows, whose ACLs the
// mode does not show).
func AdminKeyTooOpen(dir string) bool {
	if runtime.GOOS == "windows" {
		return false
	}
	st, err := os.Stat(filepath.Join(dir, AdminKeyFile))
	return err == nil && st.Mode().Perm()&0o077 != 0
}

// RunInfo is what a ready server publishes in chatd.run for chatd stop,
// chatd status and chatctl.
type RunInfo struct {
	PID       int       `json:"pid"`
	WSAddr    string    `json:"ws_addr"`   // bound address, host:port
	HTTPAddr  string    `json:"http_addr"` // bound address, host:port
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
	DataDir   string    `json:"data_dir"`
	LogFile   string    `json:"log_file,omitempty"` // daemon only
}

// HTTPURL is the base URL a local client uses to reach the HTTP API: an
// unspecified listen host (":22887", "0.0.0.0", "::") becomes 127.0.0.1.
func (ri RunInfo) HTTPURL() string { return "http://" + LocalAddr(ri.HTTPAddr) }

// LocalAddr turns a listen address into one a local client can dial.
func LocalAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// WriteRunInfo publishes ri as dir/chatd.run, atomically (readers see the
// old file or the new one, never a partial one).
func WriteRunInfo(dir string, ri RunInfo) error {
	b, err := json.MarshalIndent(ri, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, RunFile), append(b, '\n'))
}

// ReadRunInfo reads dir/chatd.run. A missing file wraps fs.ErrNotExist.
func ReadRunInfo(dir string) (RunInfo, error) {
	var ri RunInfo
	b, err := os.ReadFile(filepath.Join(dir, RunFile))
	if err != nil {
		return ri, err
	}
	if err := json.Unmarshal(b, &ri); err != nil {
		return ri, fmt.Errorf("%s: %w", filepath.Join(dir, RunFile), err)
	}
	return ri, nil
}

// RemoveRunInfo deletes dir/chatd.run; a missing file is not an error.
func RemoveRunInfo(dir string) error {
	err := os.Remove(filepath.Join(dir, RunFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// ReadPID reads dir/chatd.pid.
func ReadPID(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, PIDFile))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: not a pid: %q", filepath.Join(dir, PIDFile), b)
	}
	return pid, nil
}

func writePID(dir string, pid int) error {
	return writeAtomic(filepath.Join(dir, PIDFile), []byte(strconv.Itoa(pid)+"\n"))
}

// writeAtomic writes b to a temporary file next to path and renames it
// over path.
func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// Tail returns the last n lines of the file at path (reading at most its
// last 64 KiB). A missing file yields "".
func Tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 64 << 10
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := st.Size() - max
	if off < 0 {
		off = 0
	}
	b := make([]byte, st.Size()-off)
	k, _ := f.ReadAt(b, off)
	lines := strings.Split(strings.TrimRight(string(b[:k]), "\n"), "\n")
	if off > 0 && len(lines) > 1 {
		lines = lines[1:] // first line is probably cut
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
