package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"chatd/httpapi/apiclient"
	"chatd/internal/config"
	"chatd/internal/proc"
)

// The daemon, stop and status commands. The process mechanics (lock, pid
// and run files, detaching, waiting) are in internal/proc.

func daemonCommand() *command {
	return &command{
		name: "daemon", args: "[flags]", settings: true,
		summary:  "start the server detached (keeps running after the terminal closes); returns once it is ready",
		flagHelp: []string{"--wait duration\n\thow long to wait for the server to report ready (default 30s)"},
		setup: func(fs *flag.FlagSet) func(context.Context, *cmdEnv) error {
			wait := fs.Duration("wait", 30*time.Second, "how long to wait for the server to report ready")
			return func(ctx context.Context, env *cmdEnv) error {
				if proc.IsDaemonChild() {
					return serve(ctx, env, true)
				}
				return startDaemon(ctx, env, *wait)
			}
		},
	}
}

// startDaemon is the parent side of `chatd daemon`: refuse if a server
// holds the folder, make sure the admin key exists (so the notice reaches
// the terminal), start the child with the same arguments and wait for it.
func startDaemon(ctx context.Context, env *cmdEnv, wait time.Duration) error {
	cfg := &env.cfg.Config
	for _, w := range env.cfg.Warnings {
		fmt.Fprintln(env.stderr, "chatd: warning:", w)
	}
	if err := proc.PrepareDataDir(cfg.DataDir); err != nil {
		return err
	}
	if held, pid, err := proc.Probe(cfg.DataDir); err != nil {
		return err
	} else if held {
		return &proc.RunningError{DataDir: cfg.DataDir, PID: pid}
	}
	if _, err := loadAdminKey(cfg, env.stdout, true); err != nil {
		return err
	}
	args := env.args
	if keyFromFlag(env.cfg) {
		fmt.Fprintln(env.stderr, "chatd: warning:", keyFlagWarning)
		// The child gets the key through its environment, where only this
		// user can read it, instead of its argument list (the process
		// list, and the start line in chatd.out). Dropping the flag and
		// setting the variable keeps the precedence: the flag was the
		// highest source, and nothing above the environment is left.
		args = config.StripSecretArgs(args)
		if err := os.Setenv(adminKeyEnv, cfg.AdminKey); err != nil {
			return fmt.Errorf("pass the admin key to the daemon: %w", err)
		}
	}
	ri, err := proc.StartDaemon(ctx, proc.DaemonSpec{
		Args:    append([]string{"daemon"}, args...),
		DataDir: cfg.DataDir,
		Timeout: wait,
		Healthy: func(ctx context.Context, ri proc.RunInfo) error {
			c := &apiclient.Client{BaseURL: ri.HTTPURL(), HTTP: &http.Client{Timeout: 2 * time.Second}}
			_, err := c.Health(ctx)
			return err
		},
	})
	if err != nil {
		fmt.Fprintf(env.stderr, "chatd: %v\n", err)
		for _, f := range []string{filepath.Join(cfg.DataDir, proc.OutFile), cfg.LogPath()} {
			if tail := proc.Tail(f, 20); tail != "" {
				fmt.Fprintf(env.stderr, "---- last lines of %s:\n%s\n", f, tail)
			}
		}
		return &codeError{exitError, nil}
	}
	fmt.Fprintf(env.stdout, "chatd started (pid %d)\n", ri.PID)
	fmt.Fprintf(env.stdout, "  websocket  ws://%s\n", proc.LocalAddr(ri.WSAddr))
	fmt.Fprintf(env.stdout, "  http       %s\n", ri.HTTPURL())
	fmt.Fprintf(env.stdout, "  data       %s\n", ri.DataDir)
	fmt.Fprintf(env.stdout, "  log        %s\n", ri.LogFile)
	in := currentInvocation()
	fmt.Fprintf(env.stdout, "stop it with: %s stop%s\n", in.command("chatd"), in.dataFlag(cfg.DataDir))
	return nil
}

// adminKeyEnv is the admin key's environment variable.
var adminKeyEnv = config.EnvPrefix + "ADMIN_KEY"

const keyFlagWarning = "the admin key was given on the command line, where other users of this machine can read it " +
	"(ps); keep it in <data_dir>/admin.key or pass it as CHATD_ADMIN_KEY instead"

// keyFromFlag reports whether the admin key came from --admin-key.
func keyFromFlag(ld *config.Loaded) bool {
	return strings.HasPrefix(ld.From["admin_key"], "flag ")
}

// serverAdmin returns a client for the running server's admin API.
func serverAdmin(cfg *config.Config, ri proc.RunInfo) (*apiclient.Client, error) {
	key := cfg.AdminKey
	if key == "" {
		var err error
		if key, err = proc.ReadAdminKey(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	return &apiclient.Client{BaseURL: ri.HTTPURL(), AdminKey: key, HTTP: &http.Client{Timeout: 5 * time.Second}}, nil
}

// notRunning reports (on stdout, like the running case) that no server
// holds dir, and exits 3.
func notRunning(w io.Writer, dir string) error {
	fmt.Fprintf(w, "chatd is not running (data folder %s)\n", dir)
	return &codeError{exitNotRunning, nil}
}

func stopCommand() *command {
	return &command{
		name: "stop", args: "[flags]", settings: true,
		summary:  "stop the server on the data folder (admin control endpoint; SIGTERM fallback on Unix)",
		flagHelp: []string{"--timeout duration\n\thow long to wait for the server to exit (default 30s)"},
		setup: func(fs *flag.FlagSet) func(context.Context, *cmdEnv) error {
			timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the server to exit")
			return func(ctx context.Context, env *cmdEnv) error { return stopServer(ctx, env, *timeout) }
		},
	}
}

func stopServer(ctx context.Context, env *cmdEnv, timeout time.Duration) error {
	cfg := &env.cfg.Config
	held, pid, err := proc.Probe(cfg.DataDir)
	if err != nil {
		return err
	}
	if !held {
		return notRunning(env.stdout, cfg.DataDir)
	}
	t0 := time.Now()
	how := "admin control endpoint"
	ri, rerr := proc.ReadRunInfo(cfg.DataDir)
	if rerr == nil {
		pid = ri.PID
		var c *apiclient.Client
		c, err = serverAdmin(cfg, ri)
		if err == nil {
			err = c.Shutdown(ctx)
		}
	} else {
		err = fmt.Errorf("no %s (still starting?): %w", proc.RunFile, rerr)
	}
	if err != nil {
		if !proc.CanTerminate || pid == 0 {
			return fmt.Errorf("could not ask chatd (pid %d) to stop: %w", pid, err)
		}
		fmt.Fprintf(env.stderr, "chatd: control endpoint failed (%v); sending SIGTERM to pid %d\n", err, pid)
		if err := proc.Terminate(pid); err != nil {
			return fmt.Errorf("SIGTERM pid %d: %w", pid, err)
		}
		how = "SIGTERM"
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := proc.WaitExit(wctx, cfg.DataDir, pid); err != nil {
		return fmt.Errorf("chatd (pid %d) did not stop within %s (asked via %s); see %s", pid, timeout, how, cfg.LogPath())
	}
	fmt.Fprintf(env.stdout, "stopped chatd (pid %d) after %s\n", pid, time.Since(t0).Round(time.Millisecond))
	return nil
}

func statusCommand() *command {
	return &command{
		name: "status", args: "[flags]", settings: true,
		summary:  "show whether the server runs: pid, version, uptime, addresses, connections, users online; on a cluster node also the nodes it hears, its routes and the leases",
		flagHelp: []string{"--json\n\tprint the server's status answer as JSON"},
		setup: func(fs *flag.FlagSet) func(context.Context, *cmdEnv) error {
			asJSON := fs.Bool("json", false, "print the status as JSON")
			return func(ctx context.Context, env *cmdEnv) error { return showStatus(ctx, env, *asJSON) }
		},
	}
}

func showStatus(ctx context.Context, env *cmdEnv, asJSON bool) error {
	cfg := &env.cfg.Config
	held, pid, err := proc.Probe(cfg.DataDir)
	if err != nil {
		return err
	}
	if !held {
		return notRunning(env.stdout, cfg.DataDir)
	}
	ri, err := proc.ReadRunInfo(cfg.DataDir)
	if err != nil {
		fmt.Fprintf(env.stdout, "chatd is starting (pid %d, data folder %s)\n", pid, cfg.DataDir)
		return nil
	}
	c, err := serverAdmin(cfg, ri)
	if err != nil {
		return err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return fmt.Errorf("chatd (pid %d) is running but its status call failed: %w", ri.PID, err)
	}
	if asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	up := time.Duration(st.UptimeSeconds) * time.Second
	fmt.Fprintf(env.stdout, "chatd is running\n")
	fmt.Fprintf(env.stdout, "  pid           %d\n", st.PID)
	fmt.Fprintf(env.stdout, "  version       %s\n", st.Version)
	fmt.Fprintf(env.stdout, "  uptime        %s (since %s)\n", up, time.Unix(st.StartedAt, 0).Format(time.RFC3339))
	fmt.Fprintf(env.stdout, "  websocket     %s\n", st.WSAddr)
	fmt.Fprintf(env.stdout, "  http          %s\n", st.HTTPAddr)
	fmt.Fprintf(env.stdout, "  data          %s\n", st.DataDir)
	fmt.Fprintf(env.stdout, "  connections   %d\n", st.Conns)
	fmt.Fprintf(env.stdout, "  users online  %d\n", st.UsersOnline)
	if st.Cluster != nil {
		printClusterStatus(env.stdout, st.Cluster) // clusterstatus.go
	}
	if ri.LogFile != "" {
		fmt.Fprintf(env.stdout, "  log           %s\n", ri.LogFile)
	}
	return nil
}
