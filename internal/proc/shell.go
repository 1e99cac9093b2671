package proc

import (
	"runtime"
	"strings"
)

// ShellQuote quotes s for a POSIX shell (double quotes on Windows) when it
// holds anything beyond letters, digits and / . _ - : @ + , = %, so that a
// command chatd or chatctl suggests runs as printed.
func ShellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(`/._-:@+,=%`, r) ||
			runtime.GOOS == "windows" && r == '\\') {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	if runtime.GOOS == "windows" {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
