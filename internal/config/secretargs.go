package config

import "strings"

// Secret settings given as flags end up in the process's argument list,
// which other local users can read (ps, /proc/PID/cmdline) and which is
// easily printed or logged. These helpers keep them out of what chatd
// itself passes on or shows.

// secretFlag reports whether arg is a secret setting's flag (-name or
// --name, any spelling), and whether it carries its value (=value).
func secretFlag(arg string) (secret, inline bool) {
	if !strings.HasPrefix(arg, "-") || arg == "-" || arg == "--" {
		return false, false
	}
	name := strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-")
	name, _, inline = strings.Cut(name, "=")
	for _, s := range settings {
		if !s.Secret {
			continue
		}
		if name == s.Flag() {
			return true, inline
		}
		for _, a := range s.Aliases {
			if name == a {
				return true, inline
			}
		}
	}
	return false, false
}

// RedactArgs returns a copy of args (command-line arguments as the flag
// package reads them) with the values of secret settings replaced by
// "***". Arguments after "--" are left as they are.
func RedactArgs(args []string) []string {
	out := make([]string, len(args))
	copy(out, args)
	for i := 0; i < len(out); i++ {
		if out[i] == "--" {
			break
		}
		secret, inline := secretFlag(out[i])
		switch {
		case !secret:
		case inline:
			name, _, _ := strings.Cut(out[i], "=")
			out[i] = name + "=***"
		case i+1 < len(out):
			i++
			out[i] = "***"
		}
	}
	return out
}

// StripSecretArgs returns args without the secret settings' flags and
// their values, for re-running the program with them passed another way
// (the environment).
func StripSecretArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			return append(out, args[i:]...)
		}
		secret, inline := secretFlag(args[i])
		switch {
		case !secret:
			out = append(out, args[i])
		case !inline:
			i++ // skip the value too
		}
	}
	return out
}
