package main

import (
	"runtime/debug"
	"testing"
)

// versionOf prefers the -ldflags value, then the module version the go
// command stamps from git, then the bare VCS stamp, and says "dev" only
// when the build carries nothing.
func TestVersionOf(t *testing.T) {
	vcs := func(mod string, kv ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "chatd", Version: mod}}
		for i := 0; i+1 < len(kv); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return bi
	}
	const rev = "881dbf8f359a71f6faf58eaa6a1d82dfaf63d791"
	tests := []struct {
		name    string
		ldflags string
		bi      *debug.BuildInfo
		want    string
	}{
		{name: "ldflags win over everything", ldflags: "v1.2.3", bi: vcs("v0.9.0", "vcs.revision", rev), want: "v1.2.3"},
		{name: "tagged module version", bi: vcs("v0.4.0"), want: "v0.4.0"},
		{name: "pseudo-version from a git checkout", bi: vcs("v0.0.0-20261206145632-881dbf8f359a+dirty", "vcs.revision", rev, "vcs.modified", "true"),
			want: "v0.0.0-20261206145632-881dbf8f359a+dirty"},
		{name: "VCS stamp without a module version", bi: vcs("(devel)", "vcs.revision", rev, "vcs.modified", "false"), want: "devel-881dbf8f359a"},
		{name: "VCS stamp of a modified tree", bi: vcs("(devel)", "vcs.revision", rev, "vcs.modified", "true"), want: "devel-881dbf8f359a-dirty"},
		{name: "built with -buildvcs=false", bi: vcs("(devel)"), want: "dev"},
		{name: "no build info", want: "dev"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionOf(tc.ldflags, tc.bi); got != tc.want {
				t.Fatalf("versionOf = %q, want %q", got, tc.want)
			}
		})
	}
}
