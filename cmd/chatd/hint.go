package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"chatd/internal/config"
	"chatd/internal/proc"
)

// The commands chatd prints for the operator to run next (the first-start
// hint, "stop it with") must work when pasted into the shell they typed
// chatd into: the same path prefix (./chatd → ./chatctl), the data folder
// when it is not the default, arguments quoted.

// invocation says how the operator can run one of chatd's programs from
// the working directory chatd was started in.
type invocation struct {
	arg0 string                            // how this chatd was run (os.Args[0])
	wd   string                            // the working directory
	look func(string) (string, error)      // exec.LookPath
	stat func(string) (os.FileInfo, error) // os.Stat
}

func currentInvocation() invocation {
	wd, _ := os.Getwd()
	return invocation{arg0: os.Args[0], wd: wd, look: exec.LookPath, stat: os.Stat}
}

// command returns how to run the program name ("chatd" or "chatctl"):
//   - beside this chatd when it was run by a path (./chatd → ./chatctl,
//     /opt/chat/chatd → /opt/chat/chatctl), if that file exists — unless
//     it is the temporary build of `go run`;
//   - name alone when it is on PATH;
//   - `go run ./cmd/NAME` in a chatd source tree (chatd itself started
//     with `go run ./cmd/chatd`);
//   - else name alone (installed later by the operator).
func (in invocation) command(name string) string {
	exe := name
	if runtime.GOOS == "windows" {
		exe += ".exe"
	}
	if i := strings.LastIndexAny(in.arg0, `/\`); i >= 0 && !goRunBuild(in.arg0) {
		p := in.arg0[:i+1] + exe
		if _, err := in.stat(p); err == nil {
			return proc.ShellQuote(p)
		}
	}
	if _, err := in.look(name); err == nil {
		return name
	}
	if _, err := in.stat(filepath.Join(in.wd, "cmd", name, "main.go")); err == nil {
		return "go run ./cmd/" + name
	}
	return name
}

// goRunBuild reports whether arg0 is the throwaway binary `go run` built
// (…/go-build…/exe/chatd), which is gone once go run exits.
func goRunBuild(arg0 string) bool {
	return strings.Contains(arg0, "go-build") && filepath.Base(filepath.Dir(arg0)) == "exe"
}

// dataFlag is " --data DIR" when dataDir is not the default that chatd and
// chatctl find by themselves, else "".
func (in invocation) dataFlag(dataDir string) string {
	def := config.DefaultDataDir
	if !filepath.IsAbs(def) {
		def = filepath.Join(in.wd, def)
	}
	if filepath.Clean(dataDir) == filepath.Clean(def) {
		return ""
	}
	return " --data " + proc.ShellQuote(dataDir)
}

// nextAppCreate is the command the first-start hint suggests: the README's
// step 2, registering the site as app "myshop".
func (in invocation) nextAppCreate(dataDir string) string {
	return in.command("chatctl") + " app create" + in.dataFlag(dataDir) + ` --id myshop --name "My shop"`
}
