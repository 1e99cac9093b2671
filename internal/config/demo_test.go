package config

import (
	"strings"
	"testing"
)

// demo: auto follows foreground/daemon, an explicit value wins in both,
// from a flag (bare or with a value), the environment or the file.
func TestDemoSetting(t *testing.T) {
	for _, c := range []struct {
		name                 string
		args, env            []string
		want                 string
		foreground, asDaemon bool
	}{
		{name: "default", want: "auto", foreground: true, asDaemon: false},
		{name: "bare flag", args: []string{"--demo"}, want: "true", foreground: true, asDaemon: true},
		{name: "flag false", args: []string{"--demo=false"}, want: "false", foreground: false, asDaemon: false},
		{name: "flag auto", args: []string{"--demo=AUTO"}, want: "auto", foreground: true, asDaemon: false},
		{name: "env on", env: []string{"CHATD_DEMO=on"}, want: "true", foreground: true, asDaemon: true},
		{name: "env off, flag wins", args: []string{"--demo=yes"}, env: []string{"CHATD_DEMO=off"}, want: "true", foreground: true, asDaemon: true},
	} {
		ld, err := load(t, append([]string{"--data", t.TempDir()}, c.args...), c.env)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		cfg := &ld.Config
		if cfg.Demo != c.want || cfg.DemoOn(false) != c.foreground || cfg.DemoOn(true) != c.asDaemon {
			t.Errorf("%s: demo %q, foreground %v, daemon %v; want %q, %v, %v", c.name,
				cfg.Demo, cfg.DemoOn(false), cfg.DemoOn(true), c.want, c.foreground, c.asDaemon)
		}
	}
	_, err := load(t, []string{"--data", t.TempDir(), "--demo=maybe"}, nil)
	if err == nil || !strings.Contains(err.Error(), "--demo") || !strings.Contains(err.Error(), "want auto, true or false") {
		t.Fatalf("--demo=maybe: %v", err)
	}
}
