package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"chatd/httpapi/apiclient"
	"chatd/internal/config"
	"chatd/internal/proc"
)

// connFlags locate the server and hold the credentials. Each value is the
// flag if given, else the environment variable, else (for the server URL
// and admin key) the data folder.
type connFlags struct {
	data     string
	http     string
	adminKey string
	app      string
	secret   string
	timeout  time.Duration
}

// connFlag names the shared flags (kept out of per-command help).
var connFlag = map[string]bool{"data": true, "http": true, "admin-key": true, "app": true, "secret": true, "timeout": true, "json": true}

// Environment variables chatctl reads. CHATD_DATA_DIR and CHATD_ADMIN_KEY
// are the same settings chatd reads.
const (
	envData     = "CHATD_DATA_DIR"
	envHTTP     = "CHATD_HTTP"
	envAdminKey = "CHATD_ADMIN_KEY"
	envApp      = "CHATD_APP"
	envSecret   = "CHATD_SECRET"
)

func registerConnFlags(fs *flag.FlagSet, lookupEnv func(string) (string, bool)) *connFlags {
	get := func(k, def string) string {
		if v, ok := lookupEnv(k); ok && v != "" {
			return v
		}
		return def
	}
	c := &connFlags{}
	fs.StringVar(&c.data, "data", get(envData, config.DefaultDataDir), "data folder of the server (finds chatd.run and admin.key)")
	fs.StringVar(&c.http, "http", get(envHTTP, ""), "server HTTP address (URL or host:port); default: from the data folder")
	fs.StringVar(&c.adminKey, "admin-key", get(envAdminKey, ""), "server admin key; default: the data folder's admin.key")
	fs.StringVar(&c.app, "app", get(envApp, ""), "app id (for app API calls)")
	fs.StringVar(&c.secret, "secret", get(envSecret, ""), "app secret (for app API calls)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "timeout of each HTTP call")
	return c
}

func printConnHelp(w io.Writer) {
	fmt.Fprintf(w, `  --data dir         data folder of the server: chatd.run gives its address, admin.key its key
                     (default %s; env %s)
  --http url         server HTTP address, e.g. http://127.0.0.1:22887 (env %s)
  --admin-key key    server admin key (env %s)
  --app id           app id for app API calls (env %s)
  --secret secret    app secret for app API calls (env %s)
  --timeout d        timeout of each HTTP call (default 10s)
  --json             print results as JSON
`, config.DefaultDataDir, envData, envHTTP, envAdminKey, envApp, envSecret)
}

// baseURL is the server's HTTP API base URL.
func (c *connFlags) baseURL() (string, error) {
	if c.http != "" {
		u := strings.TrimSuffix(c.http, "/")
		if !strings.Contains(u, "://") {
			u = "http://" + proc.LocalAddr(u)
		}
		return u, nil
	}
	ri, err := proc.ReadRunInfo(c.data)
	if errors.Is(err, fs.ErrNotExist) {
		abs, _ := filepath.Abs(c.data)
		return "", fmt.Errorf("no running chatd found in data folder %s (start one with `chatd daemon --data %s`, or pass --http)", abs, c.data)
	}
	if err != nil {
		return "", err
	}
	return ri.HTTPURL(), nil
}

// client builds an API client; admin and app say which credentials the
// command needs (missing ones are an error naming the flag).
func (c *connFlags) client(admin, app bool) (*apiclient.Client, error) {
	base, err := c.baseURL()
	if err != nil {
		return nil, err
	}
	cl := &apiclient.Client{BaseURL: base, HTTP: &http.Client{Timeout: c.timeout}}
	if admin {
		cl.AdminKey = c.adminKey
		if cl.AdminKey == "" {
			if cl.AdminKey, err = proc.ReadAdminKey(c.data); err != nil {
				return nil, fmt.Errorf("%w (pass --admin-key or set %s)", err, envAdminKey)
			}
		}
	}
	if app {
		if c.app == "" || c.secret == "" {
			return nil, usagef("this command needs the app's credentials: --app and --secret (or %s and %s); `chatctl app create` prints them", envApp, envSecret)
		}
		cl.App, cl.Secret = c.app, c.secret
	}
	return cl, nil
}
