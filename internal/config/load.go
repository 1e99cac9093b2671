package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ConfigEnv names the config file through the environment (like --config).
const ConfigEnv = "CHATD_CONFIG"

// otherEnv are CHATD_ variables that are not settings but are known (used by
// chatctl), so Load does not warn about them.
var otherEnv = map[string]bool{ConfigEnv: true, "CHATD_HTTP": true, "CHATD_APP": true, "CHATD_SECRET": true}

// Loader binds every setting to a flag set and, after the flags are parsed,
// layers defaults, config file, environment and flags into a Config.
type Loader struct {
	configFlag string
	// flags holds the values given on the command line, by setting name;
	// the last occurrence wins, as with the flag package.
	flags map[string]flagVal
}

type flagVal struct {
	value string
	as    string // the spelling used, for error messages: --ws-addr
}

// Register adds a flag for every setting (and its aliases) plus --config to
// fs and returns the Loader that reads them. Call Load after fs.Parse.
func Register(fs *flag.FlagSet) *Loader {
	l := &Loader{flags: map[string]flagVal{}}
	fs.Func("config", "config file (`path`); default <data_dir>/"+FileName+" when present", func(v string) error {
		l.configFlag = v
		return nil
	})
	for _, s := range settings {
		for _, name := range append([]string{s.Flag()}, s.Aliases...) {
			fs.Var(&flagValue{l: l, s: s, as: "--" + name}, name, s.Usage)
		}
	}
	return l
}

// flagValue is one setting's flag. It only records the text; values are
// parsed in Load so that errors name the flag and precedence is applied in
// one place.
type flagValue struct {
	l  *Loader
	s  *Setting
	as string
}

func (f *flagValue) String() string {
	if f == nil || f.l == nil {
		return ""
	}
	return f.l.flags[f.s.Name].value
}

func (f *flagValue) Set(v string) error {
	f.l.flags[f.s.Name] = flagVal{value: v, as: f.as}
	return nil
}

// IsBoolFlag lets boolean settings be given as a bare --flag.
func (f *flagValue) IsBoolFlag() bool { return f.s.Kind == "bool" || f.s.Kind == "auto|bool" }

// Loaded is the effective configuration and where each value came from.
type Loaded struct {
	Config Config
	// File is the config file that was read, "" when none.
	File string
	// From maps each setting name to the source of its value: "default",
	// "file <path>:<line>", "env CHATD_X" or "flag --x".
	From map[string]string
	// Warnings are problems that did not stop loading (unknown CHATD_
	// environment variables).
	Warnings []string
}

// Load layers defaults < config file < environ (os.Environ format) < flags
// and validates the result. The first invalid value stops loading; its
// error names the setting and the source.
func (l *Loader) Load(environ []string) (*Loaded, error) {
	env := map[string]string{}
	out := &Loaded{Config: Default(), From: map[string]string{}}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, EnvPrefix) {
			continue
		}
		if v == "" { // an empty variable counts as unset
			continue
		}
		env[k] = v
	}
	for _, s := range settings {
		out.From[s.Name] = "default"
	}

	// Find the config file. The data folder may itself come from env or
	// flags (not from the file it would locate).
	path, explicit := l.configFlag, l.configFlag != ""
	if !explicit {
		if v, ok := env[ConfigEnv]; ok {
			path, explicit = v, true
		}
	}
	if !explicit {
		dir := DefaultDataDir
		if v, ok := env[lookup("data_dir").Env()]; ok {
			dir = v
		}
		if fv, ok := l.flags["data_dir"]; ok {
			dir = fv.value
		}
		path = filepath.Join(dir, FileName)
	}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		entries, err := ParseFile(path, data)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			src := fmt.Sprintf("%s:%d", path, e.Line)
			if e.Key == "data_dir" && !explicit && !sameDir(e.Value, filepath.Dir(path)) {
				return nil, fmt.Errorf("%s: data_dir cannot point elsewhere from the data folder's own %s (use --config for a file outside the data folder)", src, FileName)
			}
			if err := apply(&out.Config, e.Key, e.Value, src); err != nil {
				return nil, err
			}
			out.From[e.Key] = "file " + src
		}
		out.File = path
	case explicit || !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("config file: %w", err)
	}

	for _, s := range settings {
		if v, ok := env[s.Env()]; ok {
			if err := apply(&out.Config, s.Name, v, s.Env()); err != nil {
				return nil, err
			}
			out.From[s.Name] = "env " + s.Env()
		}
	}
	var unknown []string
	for k := range env {
		if !otherEnv[k] && lookupEnvName(k) == nil {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		out.Warnings = append(out.Warnings, fmt.Sprintf("%s: unknown setting, ignored", k))
	}

	for _, s := range settings {
		if fv, ok := l.flags[s.Name]; ok {
			if err := apply(&out.Config, s.Name, fv.value, fv.as); err != nil {
				return nil, err
			}
			out.From[s.Name] = "flag " + fv.as
		}
	}

	if err := out.Config.validate(); err != nil {
		return nil, err
	}
	c := &out.Config
	if c.DataDir, err = filepath.Abs(c.DataDir); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	if c.LogFile != "" {
		if c.LogFile, err = filepath.Abs(c.LogFile); err != nil {
			return nil, fmt.Errorf("log_file: %w", err)
		}
	}
	return out, nil
}

func sameDir(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

func lookupEnvName(k string) *Setting {
	for _, s := range settings {
		if s.Env() == k {
			return s
		}
	}
	return nil
}

// apply sets one setting; errors read "<src>: <problem>".
func apply(c *Config, name, value, src string) error {
	s := lookup(name)
	if s == nil {
		return fmt.Errorf("%s: unknown setting %q", src, name)
	}
	if err := s.set(c, value); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	return nil
}

// Entry is one `key = value` line of a config file.
type Entry struct {
	Key, Value string
	Line       int
}

// ParseFile reads the config file format:
//
//	# comment
//	ws_addr = 127.0.0.1:22886
//	allowed_origins = https://shop.example, https://m.shop.example
//	admin_key = "0123…"   # quotes keep leading/trailing spaces and #
//
// Blank lines and lines starting with # are ignored; " #" starts a comment
// after an unquoted value. Keys are setting names; an unknown or repeated
// key is an error naming the file and line.
func ParseFile(name string, data []byte) ([]Entry, error) {
	var out []Entry
	seen := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if i == 0 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want key = value, got %q", name, n, line)
		}
		k = strings.TrimSpace(k)
		v = strings.TrimSpace(v)
		if lookup(k) == nil {
			return nil, fmt.Errorf("%s:%d: unknown setting %q", name, n, k)
		}
		if prev, dup := seen[k]; dup {
			return nil, fmt.Errorf("%s:%d: %s already set on line %d", name, n, k, prev)
		}
		seen[k] = n
		if strings.HasPrefix(v, `"`) {
			end := strings.IndexByte(v[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("%s:%d: %s: missing closing quote", name, n, k)
			}
			rest := strings.TrimSpace(v[end+2:])
			if rest != "" && rest[0] != '#' {
				return nil, fmt.Errorf("%s:%d: %s: unexpected text after the closing quote", name, n, k)
			}
			v = v[1 : end+1]
		} else if j := strings.Index(v, " #"); j >= 0 {
			v = strings.TrimSpace(v[:j])
		} else if j := strings.Index(v, "\t#"); j >= 0 {
			v = strings.TrimSpace(v[:j])
		}
		out = append(out, Entry{Key: k, Value: v, Line: n})
	}
	return out, nil
}

// Write prints the configuration in the config file format, one setting a
// line with its source as a comment; secrets show as "***". The output
// (with secrets filled back in) is a valid config file.
func (ld *Loaded) Write(w io.Writer) error {
	if ld.File != "" {
		if _, err := fmt.Fprintf(w, "# config file: %s\n", ld.File); err != nil {
			return err
		}
	}
	width := 0
	for _, s := range settings {
		width = max(width, len(s.Name))
	}
	for _, s := range settings {
		v := s.Display(&ld.Config)
		if v == "" || strings.ContainsAny(v, "#\"") || strings.TrimSpace(v) != v {
			v = `"` + v + `"`
		}
		if _, err := fmt.Fprintf(w, "%-*s = %-24s # %s\n", width, s.Name, v, ld.From[s.Name]); err != nil {
			return err
		}
	}
	return nil
}

// PrintFlags writes the settings' flags with their defaults and env vars,
// for --help.
func PrintFlags(w io.Writer) {
	fmt.Fprintf(w, "  --config path\n\tconfig file (default <data_dir>/%s when present; env %s)\n", FileName, ConfigEnv)
	for _, s := range settings {
		names := "--" + s.Flag()
		for _, a := range s.Aliases {
			names += ", --" + a
		}
		def := s.Default
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(w, "  %s %s\n\t%s (default %s; env %s)\n", names, s.Kind, s.Usage, def, s.Env())
	}
}
