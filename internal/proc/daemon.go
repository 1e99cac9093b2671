package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// ChildEnv marks the re-executed daemon child. It is outside the CHATD_
// prefix so the config loader never sees it as a setting.
const ChildEnv = "_CHATD_DAEMON_CHILD"

// IsDaemonChild reports whether this process is a daemon child started by
// StartDaemon.
func IsDaemonChild() bool { return os.Getenv(ChildEnv) == "1" }

// DaemonSpec says how to start a detached server.
type DaemonSpec struct {
	// Args are the child's arguments (not including the program name). The
	// child is this same executable, run in the same working directory
	// with the same environment plus ChildEnv=1, so it loads exactly the
	// same effective config.
	Args []string
	// DataDir is where the child publishes chatd.run.
	DataDir string
	// Timeout bounds the wait for the child to report ready.
	Timeout time.Duration
	// Healthy checks a published RunInfo by calling the server (GET
	// /healthz); nil skips the check.
	Healthy func(ctx context.Context, ri RunInfo) error
}

// StartError is a daemon that did not come up. The child's log files say
// why.
type StartError struct {
	PID    int
	Exited bool   // the child exited (else it is still running)
	Status string // exit status when Exited
	Err    error
}

func (e *StartError) Error() string {
	if e.Exited {
		return fmt.Sprintf("daemon (pid %d) exited during startup: %s", e.PID, e.Status)
	}
	return fmt.Sprintf("daemon (pid %d) is not ready: %v", e.PID, e.Err)
}

func (e *StartError) Unwrap() error { return e.Err }

// StartDaemon re-executes this program detached from the terminal (its own
// session on Unix; no console and a new process group on Windows), stdin
// from the null device and stdout/stderr appended to dataDir/chatd.out, and
// waits until it publishes a chatd.run with its pid that passes Healthy.
// It returns that RunInfo; on failure a *StartError.
//
// After a successful return the child runs on its own; the caller just
// exits. (A goroutine stays blocked in Wait for the child; it dies with the
// caller.)
func StartDaemon(ctx context.Context, spec DaemonSpec) (RunInfo, error) {
	exe, err := os.Executable()
	if err != nil {
		return RunInfo{}, fmt.Errorf("daemon: find own executable: %w", err)
	}
	out, err := os.OpenFile(filepath.Join(spec.DataDir, OutFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return RunInfo{}, fmt.Errorf("daemon: %w", err)
	}
	defer out.Close() // the child has its own copy
	fmt.Fprintf(out, "---- %s daemon starting: %s %q\n", time.Now().Format(time.RFC3339), exe, spec.Args)

	cmd := exec.Command(exe, spec.Args...)
	cmd.Env = append(os.Environ(), ChildEnv+"=1")
	cmd.Stdin = nil // os/exec connects the null device
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = daemonAttr()
	if err := cmd.Start(); err != nil {
		return RunInfo{}, fmt.Errorf("daemon: start %s: %w", exe, err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	ctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error = errors.New("no " + RunFile + " yet")
	for {
		select {
		case err := <-exited:
			status := "exit status 0"
			if err != nil {
				status = err.Error()
			}
			return RunInfo{}, &StartError{PID: pid, Exited: true, Status: status, Err: err}
		case <-ctx.Done():
			return RunInfo{}, &StartError{PID: pid, Err: fmt.Errorf("not ready after %s: %w", spec.Timeout, last)}
		case <-tick.C:
		}
		ri, err := ReadRunInfo(spec.DataDir)
		if err != nil {
			continue // not written yet
		}
		if ri.PID != pid {
			last = fmt.Errorf("%s names pid %d (stale)", RunFile, ri.PID)
			continue
		}
		if spec.Healthy != nil {
			if err := spec.Healthy(ctx, ri); err != nil {
				last = err
				continue
			}
		}
		return ri, nil
	}
}

// WaitExit waits until the server on dir has released the data folder's
// lock and process pid is gone, polling until ctx ends. It returns
// ctx.Err() if that does not happen in time.
func WaitExit(ctx context.Context, dir string, pid int) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		held, _, err := Probe(dir)
		if err == nil && !held && !Alive(pid) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
