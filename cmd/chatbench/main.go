// Command chatbench is chatd's bundled load generator: it provisions an
// app, users and groups through the admin API, then drives a scenario over
// WebSocket (or the HTTP API) the way real clients do and prints a report.
// See `chatbench help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"chatd/bench"
	"chatd/internal/proc"
)

// Exit statuses.
const (
	exitOK          = 0
	exitError       = 1   // could not run
	exitFailed      = 2   // ran, but a check failed
	exitInterrupted = 130 // stopped by Ctrl-C (the report is still printed)
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills the process
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `chatbench: load generator for chatd. It talks to a running chatd only over
the wire (WebSocket and the HTTP API), provisions what it needs itself (an app,
users, tokens, groups) and prints a report: a table, or one JSON line.

Usage:
  chatbench connect [flags]   open N connections (upgrade + login) and hold them:
                              connect+login rate, failures by cause, server memory
                              per connection
  chatbench p2p [flags]       pairs of users sending at a fixed total rate
                              (open-loop): messages/s acknowledged and delivered,
                              send→ack and send→delivery latency percentiles
  chatbench group [flags]     groups of a given size, all members online:
                              deliveries/s and delivery latency percentiles
  chatbench churn [flags]     connections closing and reconnecting at a rate,
                              with sync after each reconnect: any missed message
  chatbench http [flags]      the server API's send endpoint at a fixed rate
  chatbench broadcast [flags] notices to every user of the app (POST
                              /api/v1/broadcasts) with some users online: time
                              to accept, deliveries/s, disk growth (--data)
  chatbench cleanup [flags]   revoke every token chatbench made (users stay:
                              chatd cannot delete users yet)
  chatbench probe [flags]     the host alone, no chatd: how late a sleeping
                              thread wakes (stalls), an ideal group-commit
                              journal on the data folder's disk, a loopback
                              TCP round trip: the floor under chatd's figures
  chatbench help              print this help

Scenario flags (defaults in parentheses):
  connect  -n, --conns N         connections (1000)
           --settle DURATION     idle time before the memory sample (2s)
           --portable            open the connections with the goroutine-per-
                                 connection client the other scenarios use;
                                 by default, on Linux, a few epoll loops open
                                 and hold them so that chatbench's own cost
                                 does not limit the rate it measures
           --friends N           give each user N friends (even: N/2 on
                                 either side in a ring) before the ramp, and
                                 report the presence events/s the logins
                                 cause (0: none; run longer than the
                                 server's presence_debounce, 5s)
  p2p      --pairs N             pairs of users, 2 connections each (1000)
           --rate MSG/S          messages per second in total (10000)
  group    --groups N            groups (1)
           --members N           members per group, all online (100)
           --rate MSG/S          messages per second over all groups
                                 (0: about 50,000 deliveries/s)
  churn    -n, --conns N         users, in pairs, one connection each (200)
           --churn-rate N        reconnects per second (20)
           --rate MSG/S          messages per second in total (200)
           --offline DURATION    time away between close and reconnect (100ms)
  http     --rate REQ/S          send requests per second (1000)
           --concurrency N       requests in flight at most (64)
           --pairs N             pairs of users online as senders/recipients (50)
  service  --shops N             customer-service shops (10)
           --agents N            agents per shop, each online (3)
           --customers N         customers per shop, each opening a
                                 conversation routed to an agent (30)
           --rate MSG/S          messages per second in total, customers and
                                 agents alternating (2000); reports the
                                 open → assigned time beside the messages
  broadcast --users N            users of the app, the audience (100000)
           --online N            of them connected (10000)
           --count N             broadcasts, one after another (1)

  probe    --parts LIST          stalls,disk,loopback (all)
           --duration DURATION   per part (5s)
           --dir DIR             folder for the disk part's scratch file (the
                                 --data folder when it exists, else .)
           --rate N              disk: records per second (10000)
           --record BYTES        disk: bytes per record (300)
           --depth N             disk: fdatasyncs in flight (1)
           --tick DURATION       stalls: the sampler's sleep (1ms)
           --json, --quiet, --data as below; probe needs no server

Common flags:
  --data DIR              chatd's data folder: admin.key, chatd.run (addresses
                          of the running server) and the state file
                          (env CHATD_DATA_DIR, else ./data)
  --ws ADDR               WebSocket address, ws://host:port[/path] or host:port
                          (from DATA/chatd.run, else 127.0.0.1:22886)
  --ws-addrs LIST         several WebSocket addresses, comma-separated (the
                          nodes of a chatd cluster, docs/cluster.md): user
                          i's connection goes to address i mod n, so the two
                          users of a p2p pair, and the members of a group,
                          are on different nodes (see --place); instead of
                          --ws. Provisioning and the server figures use
                          --http's node; connect then opens its connections
                          with the portable client
  --place MODE            with --ws-addrs: spread (user i on address i mod n,
                          the default) or together (p2p and group: pair or
                          group k on address k mod n, its users on one node),
                          to measure what splitting pairs or groups over
                          nodes costs
  --http ADDR             HTTP API address (from DATA/chatd.run, else
                          127.0.0.1:22887)
  --admin-key KEY         server admin key (env CHATD_ADMIN_KEY, else
                          DATA/admin.key)
  --allow-remote          allow a target outside 127.0.0.0/8 and ::1
  --sources LIST          local source addresses, e.g. 127.0.0.1-127.0.0.8 or
                          127.0.0.1,127.0.0.2; "none" lets the kernel choose
                          (127.0.0.1-127.0.0.8 for a loopback target)
  --duration DURATION     how long to send or hold (10s)
  --drain DURATION        after sending, how long to wait for replies and
                          deliveries (10s)
  --deadline DURATION     hard limit for the whole run, provisioning included
                          (duration + drain + 3m)
  --connect-rate N        new connections per second while ramping (0: as
                          fast as --dial-concurrency allows)
  --dial-concurrency N    connections being opened at once (64)
  --connect-timeout DURATION  one dial + upgrade + login (10s)
  --window N              unanswered sends per connection before sends queue
                          on the client (256, chatd's per-connection queue)
  --size N                message text bytes (32)
  --app ID                app to provision and use (chatbench)
  --state FILE            what chatbench made, reused by later runs
                          (DATA/chatbench.json; "none": keep nothing)
  --fresh                 ignore the state file and provision anew
  --cleanup               when done, revoke the tokens chatbench made
                          (users stay: chatd cannot delete users yet)
  --workers N             provisioning requests at once (32)
  --json                  print the report as one JSON line on stdout (the
                          table goes to stderr)
  --quiet                 no live progress line
  --cpuprofile FILE       write chatbench's own CPU profile to FILE (go tool
                          pprof), to tell the client's cost from the server's
  --trace FILE            p2p, group, churn: have chatd trace every send
                          (GET /debug/msgtrace, loopback only), split each
                          delivery's latency into its parts (send lag, to
                          chatd, queued, group commit, fan-out, to the
                          client) in the report, and write the joined
                          records to FILE

Latency is measured from each message's intended send time (open-loop, so a
slow server shows up as latency, not as a lower rate); "send lag" is how late
chatbench itself wrote each message, to tell a busy client from a slow server.
Against chatd on the same host, the report also gives the server's own share,
read from its /metrics before and after the run: "send → ack (chatd)" (a send
decoded to its ack queued) and "group commit (chatd)".
Every report also gives the host's stalls over the run: how late a small
process chatbench starts beside it, sleeping 1 ms at a time, woke (chatbench
probe measures the host alone, with no server).
Memory per connection is the growth of the server's RSS over the ramp: most
meaningful on a freshly started server. chatbench refuses to open more sockets
than its open-file limit allows. Every run stops by itself.

Exit status: 0 every check passed; 1 could not run (bad flags, server not
reachable, provisioning failed); 2 the run finished but a check failed
(errors, missing deliveries, missed messages, dropped connections); 130
interrupted (the report is still printed).
`

// common holds the shared flags.
type common struct {
	o         bench.Options
	data      string
	ws, http  string
	wsAddrs   string
	adminKey  string
	state     string
	jsonOut   bool
	quiet     bool
	cpuprof   string
	connRate  float64
	deadline  time.Duration
	duration  time.Duration
	drain     time.Duration
	dialConc  int
	connectTO time.Duration
}

func (c *common) register(fs *flag.FlagSet) {
	defData := os.Getenv("CHATD_DATA_DIR")
	if defData == "" {
		defData = "./data"
	}
	fs.StringVar(&c.data, "data", defData, "")
	fs.StringVar(&c.ws, "ws", "", "")
	fs.StringVar(&c.wsAddrs, "ws-addrs", "", "")
	fs.StringVar(&c.o.Place, "place", "", "")
	fs.StringVar(&c.http, "http", "", "")
	fs.StringVar(&c.adminKey, "admin-key", "", "")
	fs.BoolVar(&c.o.AllowRemote, "allow-remote", false, "")
	fs.StringVar(&c.o.Sources, "sources", "", "")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "")
	fs.DurationVar(&c.drain, "drain", 10*time.Second, "")
	fs.DurationVar(&c.deadline, "deadline", 0, "")
	fs.Float64Var(&c.connRate, "connect-rate", 0, "")
	fs.IntVar(&c.dialConc, "dial-concurrency", 64, "")
	fs.DurationVar(&c.connectTO, "connect-timeout", 10*time.Second, "")
	fs.IntVar(&c.o.Window, "window", 256, "")
	fs.IntVar(&c.o.Size, "size", 32, "")
	fs.StringVar(&c.o.App, "app", "chatbench", "")
	fs.StringVar(&c.state, "state", "", "")
	fs.BoolVar(&c.o.Fresh, "fresh", false, "")
	fs.BoolVar(&c.o.Cleanup, "cleanup", false, "")
	fs.IntVar(&c.o.Workers, "workers", 32, "")
	fs.BoolVar(&c.jsonOut, "json", false, "")
	fs.BoolVar(&c.quiet, "quiet", false, "")
	fs.StringVar(&c.cpuprof, "cpuprofile", "", "")
	fs.StringVar(&c.o.Trace, "trace", "", "")
}

// resolve turns the flags into Options: addresses from chatd.run, the
// admin key from the data folder, the default state file.
func (c *common) resolve(stderr io.Writer) error {
	if c.duration <= 0 || c.drain < 0 || c.deadline < 0 || c.connectTO <= 0 {
		return errors.New("--duration and --connect-timeout must be positive, --drain and --deadline not negative")
	}
	if c.dialConc < 1 || c.o.Window < 1 || c.o.Size < 1 || c.o.Workers < 1 || c.connRate < 0 {
		return errors.New("--dial-concurrency, --window, --size and --workers must be at least 1, --connect-rate not negative")
	}
	o := &c.o
	o.Duration, o.Drain, o.Deadline = c.duration, c.drain, c.deadline
	if o.Drain == 0 {
		o.Drain = time.Millisecond // "no drain" still checks what arrived
	}
	o.ConnectRate, o.DialConcurrency, o.ConnectTimeout = c.connRate, c.dialConc, c.connectTO
	o.Target.WS, o.Target.HTTP = c.ws, c.http
	if c.o.Place != "" && c.wsAddrs == "" {
		return errors.New("--place places connections over several addresses: give --ws-addrs too")
	}
	if c.wsAddrs != "" {
		if c.ws != "" {
			return errors.New("give --ws or --ws-addrs, not both")
		}
		addrs, err := splitAddrs(c.wsAddrs)
		if err != nil {
			return err
		}
		o.Target.WS, o.Target.WSAddrs, c.ws = addrs[0], addrs, addrs[0] // chatd.run is not read for the WebSocket address
	}
	if c.ws == "" || c.http == "" {
		ri, err := proc.ReadRunInfo(c.data)
		switch {
		case err == nil:
			if c.ws == "" {
				o.Target.WS = proc.LocalAddr(ri.WSAddr)
			}
			if c.http == "" {
				o.Target.HTTP = proc.LocalAddr(ri.HTTPAddr)
			}
		case errors.Is(err, fs.ErrNotExist):
			if c.ws == "" {
				o.Target.WS = "127.0.0.1:22886"
			}
			if c.http == "" {
				o.Target.HTTP = "127.0.0.1:22887"
			}
		default:
			return err
		}
	}
	o.Target.AdminKey = c.adminKey
	if o.Target.AdminKey == "" {
		o.Target.AdminKey = os.Getenv("CHATD_ADMIN_KEY")
	}
	if o.Target.AdminKey == "" {
		k, err := proc.ReadAdminKey(c.data)
		if err != nil {
			return fmt.Errorf("no admin key: pass --admin-key, set CHATD_ADMIN_KEY, or point --data at chatd's data folder (%w)", err)
		}
		o.Target.AdminKey = k
	}
	switch c.state {
	case "none":
		o.StatePath = ""
	case "":
		if st, err := os.Stat(c.data); err == nil && st.IsDir() {
			o.StatePath = filepath.Join(c.data, "chatbench.json")
		}
	default:
		o.StatePath = c.state
	}
	if !c.quiet {
		o.Progress = stderr
		if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 && stderr == os.Stderr {
			o.ProgressTTY = true
		}
	}
	return nil
}

// splitAddrs parses --ws-addrs: comma-separated addresses, none empty.
func splitAddrs(list string) ([]string, error) {
	var out []string
	for i, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			return nil, fmt.Errorf("--ws-addrs: item %d is empty (want host:port,host:port,…)", i+1)
		}
		out = append(out, a)
	}
	return out, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		io.WriteString(stderr, usage)
		return exitError
	}
	name, args := args[0], args[1:]
	if name == "help" || name == "-h" || name == "--help" || name == "-help" {
		io.WriteString(stdout, usage)
		return exitOK
	}
	if name == "probe" {
		return runProbe(ctx, args, stdout, stderr)
	}
	if name == stallSamplerCmd {
		// The stall sampler beside a run: see bench.Options.StallSampler.
		tick := time.Millisecond
		if len(args) > 0 {
			d, err := time.ParseDuration(args[0])
			if err != nil || d <= 0 {
				fmt.Fprintf(stderr, "chatbench %s: bad tick %q\n", stallSamplerCmd, args[0])
				return exitError
			}
			tick = d
		}
		if err := bench.RunStallSampler(os.Stdin, stdout, tick); err != nil {
			fmt.Fprintf(stderr, "chatbench %s: %v\n", stallSamplerCmd, err)
			return exitError
		}
		return exitOK
	}
	fs := flag.NewFlagSet("chatbench "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var c common
	c.register(fs)
	var s bench.Scenario
	switch name {
	case "connect":
		sc := &bench.Connect{}
		fs.IntVar(&sc.Conns, "conns", 1000, "")
		fs.IntVar(&sc.Conns, "n", 1000, "")
		fs.DurationVar(&sc.Settle, "settle", 2*time.Second, "")
		fs.BoolVar(&sc.Portable, "portable", false, "")
		fs.IntVar(&sc.Friends, "friends", 0, "")
		s = sc
	case "p2p":
		sc := &bench.P2P{}
		fs.IntVar(&sc.Pairs, "pairs", 1000, "")
		fs.Float64Var(&sc.Rate, "rate", 10000, "")
		s = sc
	case "group":
		sc := &bench.Group{}
		fs.IntVar(&sc.Groups, "groups", 1, "")
		fs.IntVar(&sc.Members, "members", 100, "")
		fs.Float64Var(&sc.Rate, "rate", 0, "")
		s = sc
	case "churn":
		sc := &bench.Churn{}
		fs.IntVar(&sc.Conns, "conns", 200, "")
		fs.IntVar(&sc.Conns, "n", 200, "")
		fs.Float64Var(&sc.ChurnRate, "churn-rate", 20, "")
		fs.Float64Var(&sc.Rate, "rate", 200, "")
		fs.DurationVar(&sc.Offline, "offline", 100*time.Millisecond, "")
		s = sc
	case "http":
		sc := &bench.HTTP{}
		fs.Float64Var(&sc.Rate, "rate", 1000, "")
		fs.IntVar(&sc.Concurrency, "concurrency", 64, "")
		fs.IntVar(&sc.Pairs, "pairs", 50, "")
		s = sc
	case "service":
		sc := &bench.Service{}
		fs.IntVar(&sc.Shops, "shops", 10, "")
		fs.IntVar(&sc.Agents, "agents", 3, "")
		fs.IntVar(&sc.Customers, "customers", 30, "")
		fs.Float64Var(&sc.Rate, "rate", 2000, "")
		s = sc
	case "broadcast":
		sc := &bench.Broadcast{}
		fs.IntVar(&sc.Users, "users", 100000, "")
		fs.IntVar(&sc.Online, "online", 10000, "")
		fs.IntVar(&sc.Count, "count", 1, "")
		s = sc
	case "cleanup":
	default:
		fmt.Fprintf(stderr, "chatbench: unknown command %q (scenarios: connect, p2p, group, churn, http, service, broadcast; also probe, cleanup, help)\n", name)
		return exitError
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			io.WriteString(stdout, usage)
			return exitOK
		}
		fmt.Fprintf(stderr, "chatbench %s: %v (see chatbench help)\n", name, err)
		return exitError
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "chatbench %s: unexpected argument %q (flags come after the command; see chatbench help)\n", name, fs.Arg(0))
		return exitError
	}
	if err := c.resolve(stderr); err != nil {
		fmt.Fprintf(stderr, "chatbench %s: %v\n", name, err)
		return exitError
	}
	if sc, ok := s.(*bench.Broadcast); ok {
		if _, err := os.Stat(c.data); err == nil {
			sc.DataDir = c.data // its files' growth is the broadcasts' disk cost
		}
	}
	if name == "cleanup" {
		n, err := bench.Cleanup(ctx, c.o)
		if err != nil {
			fmt.Fprintf(stderr, "chatbench cleanup: %v\n", err)
			return exitError
		}
		fmt.Fprintf(stdout, "chatbench cleanup: revoked the tokens of %d users (users stay: chatd cannot delete users yet)\n", n)
		return exitOK
	}

	c.o.StallSampler = stallSampler()
	stopProfile, err := startCPUProfile(c.cpuprof)
	if err != nil {
		fmt.Fprintf(stderr, "chatbench %s: %v\n", name, err)
		return exitError
	}
	rep, err := bench.Run(ctx, c.o, s)
	if perr := stopProfile(); perr != nil {
		fmt.Fprintf(stderr, "chatbench %s: %v\n", name, perr)
	}
	if rep != nil {
		table := stdout
		if c.jsonOut {
			table = stderr
		}
		rep.WriteTable(table)
		if c.jsonOut {
			rep.WriteJSON(stdout)
		}
	}
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "chatbench %s: %v\n", name, err)
		return exitError
	case rep.Interrupted:
		return exitInterrupted
	case !rep.OK:
		fmt.Fprintf(stderr, "chatbench %s: FAILED: %s\n", name, strings.Join(rep.Problems, "; "))
		return exitFailed
	}
	return exitOK
}

// stallSamplerCmd is the hidden command chatbench runs itself as, beside a
// scenario, to sample the host's stalls from a process of their own.
const stallSamplerCmd = "internal-stall-sampler"

// stallSampler is the command line of chatbench's stall sampler process,
// or nil when chatbench cannot find its own executable (the sampler then
// runs on a thread of this process).
func stallSampler() []string {
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	return []string{exe, stallSamplerCmd}
}

// runProbe is `chatbench probe`: the host's own floor, no server needed.
func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chatbench probe", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var p bench.Probe
	var parts, data, dir string
	var jsonOut, quiet bool
	defData := os.Getenv("CHATD_DATA_DIR")
	if defData == "" {
		defData = "./data"
	}
	fs.StringVar(&parts, "parts", strings.Join(bench.ProbeParts, ","), "")
	fs.DurationVar(&p.Duration, "duration", 5*time.Second, "")
	fs.StringVar(&data, "data", defData, "")
	fs.StringVar(&dir, "dir", "", "")
	fs.Float64Var(&p.Rate, "rate", 10000, "")
	fs.IntVar(&p.Record, "record", 300, "")
	fs.IntVar(&p.Depth, "depth", 1, "")
	fs.DurationVar(&p.Tick, "tick", time.Millisecond, "")
	fs.BoolVar(&jsonOut, "json", false, "")
	fs.BoolVar(&quiet, "quiet", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			io.WriteString(stdout, usage)
			return exitOK
		}
		fmt.Fprintf(stderr, "chatbench probe: %v (see chatbench help)\n", err)
		return exitError
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "chatbench probe: unexpected argument %q (see chatbench help)\n", fs.Arg(0))
		return exitError
	}
	// Zero values mean "default" to bench.Probe; here they are mistakes.
	if p.Duration <= 0 || p.Rate <= 0 || p.Record <= 0 || p.Depth <= 0 || p.Tick <= 0 {
		fmt.Fprintln(stderr, "chatbench probe: --duration, --rate, --record, --depth and --tick must be positive")
		return exitError
	}
	for _, part := range strings.Split(parts, ",") {
		if part = strings.TrimSpace(part); part != "" {
			p.Parts = append(p.Parts, part)
		}
	}
	if len(p.Parts) == 0 {
		fmt.Fprintln(stderr, "chatbench probe: --parts is empty (parts: "+strings.Join(bench.ProbeParts, ", ")+")")
		return exitError
	}
	p.Dir = dir
	if p.Dir == "" {
		// The disk chatd's store is on, when that folder exists.
		p.Dir = "."
		if st, err := os.Stat(data); err == nil && st.IsDir() {
			p.Dir = data
		}
	}
	if !quiet {
		p.Progress = stderr
		if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 && stderr == os.Stderr {
			p.ProgressTTY = true
		}
	}
	p.StallSampler = stallSampler()
	rep, err := bench.RunProbe(ctx, p)
	if err != nil {
		fmt.Fprintf(stderr, "chatbench probe: %v\n", strings.TrimPrefix(err.Error(), "probe: "))
		return exitError
	}
	table := stdout
	if jsonOut {
		table = stderr
	}
	rep.WriteTable(table)
	if jsonOut {
		rep.WriteJSON(stdout)
	}
	if rep.Interrupted {
		return exitInterrupted
	}
	return exitOK
}

// startCPUProfile starts profiling chatbench's own CPU into path (empty:
// no profile) and returns the function that stops it and closes the file.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, errors.New("--cpuprofile: " + err.Error())
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, errors.New("--cpuprofile: " + err.Error())
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return errors.New("--cpuprofile: " + err.Error())
		}
		return nil
	}, nil
}
