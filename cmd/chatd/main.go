// Command chatd is the chat server.
//
//	chatd [flags]          run in the foreground (Ctrl-C stops it)
//	chatd serve [flags]    the same
//	chatd daemon [flags]   start detached, return once it is ready
//	chatd stop [flags]     stop the server on the data folder
//	chatd status [flags]   running or not, pid, addresses, connections
//	chatd backup FILE      copy the database (online while the server runs)
//	chatd restore FILE     put a backup in place (server stopped; --force to replace)
//	chatd config [flags]   print the effective configuration
//	chatd version          print the version
//
// Settings come from defaults < config file < CHATD_* environment < flags;
// see `chatd help` and docs/operations.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"

	"chatd/internal/config"
	"chatd/internal/proc"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version string

// Exit codes.
const (
	exitOK         = 0
	exitError      = 1
	exitUsage      = 2
	exitNotRunning = 3 // status and stop: no server on the data folder (LSB)
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), proc.ShutdownSignals...)
	defer stop()
	go func() {
		// After the first signal, restore the default handling: a second
		// Ctrl-C kills at once instead of waiting for a graceful stop.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

// codeError carries an exit code other than 1; its message (if any) is
// printed like any error.
type codeError struct {
	code int
	err  error // nil: print nothing
}

func (e *codeError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *codeError) Unwrap() error { return e.err }

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ce *codeError
	if errors.As(err, &ce) {
		if ce.err != nil {
			fmt.Fprintln(stderr, "chatd:", ce.err)
		}
		return ce.code
	}
	fmt.Fprintln(stderr, "chatd:", err)
	return exitError
}

// command is one subcommand. flags adds the command's own flags (beyond
// the settings) to fs and returns the function that runs it.
type command struct {
	name    string
	args    string // usage after the name
	summary string
	// settings: the command accepts every setting flag and loads the
	// config.
	settings bool
	// flagHelp documents the command's own flags for `chatd help`.
	flagHelp []string
	// nargs is how many arguments the command takes besides flags (in
	// cmdEnv.pos); flags may come before or after them.
	nargs int
	setup func(fs *flag.FlagSet) func(ctx context.Context, env *cmdEnv) error
}

// cmdEnv is what a command runs with.
type cmdEnv struct {
	args   []string // the command's arguments, as given
	pos    []string // the arguments that are not flags (command.nargs of them)
	cfg    *config.Loaded
	stdout io.Writer
	stderr io.Writer
}

// commands lists every subcommand in help order; "" is the foreground
// server.
func commands() []*command {
	return []*command{
		{name: "", args: "[flags]", summary: "run the server in the foreground (Ctrl-C or SIGTERM stops it)",
			settings: true, setup: func(*flag.FlagSet) func(context.Context, *cmdEnv) error { return cmdServe }},
		{name: "serve", args: "[flags]", summary: "the same: run the server in the foreground",
			settings: true, setup: func(*flag.FlagSet) func(context.Context, *cmdEnv) error { return cmdServe }},
		daemonCommand(),
		stopCommand(),
		statusCommand(),
		backupCommand(),
		restoreCommand(),
		{name: "config", args: "[flags]", summary: "print the effective configuration and where each value comes from (secrets as ***)",
			settings: true, setup: func(*flag.FlagSet) func(context.Context, *cmdEnv) error { return cmdConfig }},
		{name: "version", summary: "print the version",
			setup: func(*flag.FlagSet) func(context.Context, *cmdEnv) error { return cmdVersion }},
		{name: "help", summary: "print this help (also --help, -h)",
			setup: func(*flag.FlagSet) func(context.Context, *cmdEnv) error { return cmdHelp }},
	}
}

// run dispatches args (without the program name) to a command.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	name := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == name {
			cmd = c
		}
	}
	if cmd == nil {
		return &codeError{exitUsage, fmt.Errorf("unknown command %q (run `chatd help`)", name)}
	}
	fs := flag.NewFlagSet("chatd "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; help is ours
	var loader *config.Loader
	if cmd.settings {
		loader = config.Register(fs)
	}
	runFn := cmd.setup(fs)
	env := &cmdEnv{args: args, stdout: stdout, stderr: stderr}
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printHelp(stdout)
				return nil
			}
			return &codeError{exitUsage, fmt.Errorf("%v (run `chatd help`)", err)}
		}
		if fs.NArg() == 0 {
			break
		}
		if len(env.pos) == cmd.nargs {
			return &codeError{exitUsage, fmt.Errorf("unexpected argument %q (run `chatd help`)", fs.Arg(0))}
		}
		env.pos = append(env.pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(env.pos) < cmd.nargs {
		return &codeError{exitUsage, fmt.Errorf("chatd %s needs %s (run `chatd help`)", cmd.name, cmd.args)}
	}
	if loader != nil {
		ld, err := loader.Load(os.Environ())
		if err != nil {
			return &codeError{exitUsage, err}
		}
		env.cfg = ld
	}
	return runFn(ctx, env)
}

// Version is the build's version; see versionOf.
func Version() string {
	bi, _ := debug.ReadBuildInfo()
	return versionOf(version, bi)
}

// versionOf picks the version a build reports, first found of:
//   - ldflags, the value of go build -ldflags "-X main.version=v1.2.3";
//   - the main module's version as the go command stamped it: in a git
//     checkout Go (1.24 and later) stamps the tag, or a pseudo-version
//     naming the commit (v0.0.0-20261206145632-881dbf8f359a), with
//     "+dirty" when the tree had uncommitted changes;
//   - "devel-" and the commit's first 12 hex digits (and "-dirty") when
//     the build has a VCS stamp but no module version;
//   - "dev": the build has no VCS information (-buildvcs=false, as CI
//     builds, or a source tree without .git).
func versionOf(ldflags string, bi *debug.BuildInfo) string {
	if ldflags != "" {
		return ldflags
	}
	if bi == nil {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	if rev, dirty := vcsRevision(bi); rev != "" {
		v := "devel-" + rev[:min(12, len(rev))]
		if dirty {
			v += "-dirty"
		}
		return v
	}
	return "dev"
}

// vcsRevision is the commit the build was stamped with ("" when none) and
// whether the tree had uncommitted changes.
func vcsRevision(bi *debug.BuildInfo) (rev string, dirty bool) {
	if bi == nil {
		return "", false
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	return rev, dirty
}

// cmdVersion prints the version, the Go version and platform, and the
// commit when the build has one that the version does not already name.
func cmdVersion(_ context.Context, env *cmdEnv) error {
	bi, _ := debug.ReadBuildInfo()
	v := versionOf(version, bi)
	extra := ""
	if rev, dirty := vcsRevision(bi); rev != "" && !strings.Contains(v, rev[:min(12, len(rev))]) {
		extra = ", commit " + rev
		if dirty {
			extra += " with uncommitted changes"
		}
	}
	fmt.Fprintf(env.stdout, "chatd %s (%s %s/%s%s)\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH, extra)
	return nil
}

func cmdConfig(_ context.Context, env *cmdEnv) error {
	for _, w := range env.cfg.Warnings {
		fmt.Fprintln(env.stderr, "chatd: warning:", w)
	}
	return env.cfg.Write(env.stdout)
}

func cmdHelp(_ context.Context, env *cmdEnv) error {
	printHelp(env.stdout)
	return nil
}

func printHelp(w io.Writer) {
	fmt.Fprint(w, `chatd: self-hosted real-time chat server (WebSocket + HTTP API, one data folder)

Usage:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-28s %s\n", strings.Join(strings.Fields("chatd "+c.name+" "+c.args), " "), c.summary)
	}
	fmt.Fprint(w, `
Command flags:
`)
	for _, c := range commands() {
		for _, h := range c.flagHelp {
			fmt.Fprintf(w, "  chatd %s %s\n", c.name, h)
		}
	}
	fmt.Fprintf(w, `
Settings (accepted by the server, daemon, stop, status, backup, restore and config):
Each setting is a flag --name-with-dashes, an environment variable CHATD_NAME
and a config file line "name = value". Precedence: defaults < config file
(--config, or <data_dir>/%s when present) < environment < flags.

`, config.FileName)
	config.PrintFlags(w)
	fmt.Fprint(w, `
Exit codes: 0 ok, 1 error, 2 bad usage or configuration, 3 not running (status, stop).
Docs: docs/operations.md
`)
}
