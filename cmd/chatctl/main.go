// Command chatctl administers a running chatd over its HTTP API: create
// apps, push users and issue tokens, send messages, create groups, read
// history, show status.
//
// It finds the server and the admin key in the data folder (--data, default
// ./data: chatd.run and admin.key), or takes them from --http/--admin-key
// or CHATD_HTTP/CHATD_ADMIN_KEY. App calls are signed with --app/--secret
// (or CHATD_APP/CHATD_SECRET).
//
// Each subcommand lives in its own file and registers itself with
// register; adding one (e.g. subscribe) is adding one file.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"

	"chatd/httpapi/apiclient"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	self = invokedAs(os.Args[0])
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv); err != nil {
		var ue usageError
		code := 1
		if errors.As(err, &ue) {
			code = 2
		}
		fmt.Fprintln(os.Stderr, "chatctl:", err)
		os.Exit(code)
	}
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ error }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// command is one chatctl subcommand.
type command struct {
	// name is one or two words: "status", "app create".
	name string
	// args is the synopsis of the command's own flags, for help.
	args    string
	summary string
	// positional: the command takes arguments after its flags (e.g.
	// `subscribe message serverInfo`), found in env.args. Otherwise any
	// is a usage error.
	positional bool
	// setup defines the command's own flags on fs and returns the function
	// that runs it after parsing.
	setup func(fs *flag.FlagSet) func(ctx context.Context, e *env) error
}

// registry holds every subcommand, filled by the files' init functions.
var registry = map[string]*command{}

// register adds a subcommand; each command file calls it from init.
func register(c *command) {
	if _, dup := registry[c.name]; dup {
		panic("chatctl: command registered twice: " + c.name)
	}
	registry[c.name] = c
}

// env is what a command runs with: the located server and the output.
type env struct {
	args   []string // positional arguments (commands with positional set)
	conn   *connFlags
	stdout io.Writer
	stderr io.Writer
	json   bool // --json: print results as JSON
}

// client returns an API client for the server, with the admin key when
// admin is set and the app credentials when app is set.
func (e *env) client(admin, app bool) (*apiclient.Client, error) {
	return e.conn.client(admin, app)
}

// print writes v as indented JSON under --json, else calls human.
func (e *env) print(v any, human func(w io.Writer)) error {
	if e.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	human(e.stdout)
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		printHelp(stdout)
		return nil
	}
	var cmd *command
	n := 0
	for i := min(2, len(args)); i >= 1 && cmd == nil; i-- {
		if c, ok := registry[strings.Join(args[:i], " ")]; ok {
			cmd, n = c, i
		}
	}
	if cmd == nil {
		return usagef("unknown command %q (run `chatctl help`)", strings.Join(args[:min(2, len(args))], " "))
	}
	fs := flag.NewFlagSet("chatctl "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	conn := registerConnFlags(fs, lookupEnv)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	runFn := cmd.setup(fs)
	if err := fs.Parse(args[n:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandHelp(stdout, cmd, fs)
			return nil
		}
		return usagef("%s: %v (run `chatctl %s --help`)", cmd.name, err, cmd.name)
	}
	if fs.NArg() > 0 && !cmd.positional {
		return usagef("%s: unexpected argument %q", cmd.name, fs.Arg(0))
	}
	return runFn(ctx, &env{args: fs.Args(), conn: conn, stdout: stdout, stderr: stderr, json: *asJSON})
}

func sortedCommands() []*command {
	var out []*command
	for _, c := range registry {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func printHelp(w io.Writer) {
	fmt.Fprint(w, "chatctl: administer a running chatd over its HTTP API\n\nUsage:\n")
	for _, c := range sortedCommands() {
		fmt.Fprintf(w, "  chatctl %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nEvery command takes:\n")
	printConnHelp(w)
	fmt.Fprint(w, "\nRun `chatctl COMMAND --help` for a command's flags.\n")
}

func printCommandHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "chatctl %s %s\n\n%s\n\nFlags:\n", c.name, c.args, c.summary)
	fs.VisitAll(func(f *flag.Flag) {
		if connFlag[f.Name] {
			return
		}
		name, usage := flag.UnquoteUsage(f)
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "  --%s %s\n\t%s%s\n", f.Name, name, usage, def)
	})
	fmt.Fprint(w, "\nServer and credentials:\n")
	printConnHelp(w)
}
