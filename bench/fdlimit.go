package bench

import (
	"errors"
	"strconv"
)

// FDReserve is how many open files chatbench keeps free beyond its client
// sockets: HTTP API connections, the state file, stdio and the runtime's
// own descriptors.
const FDReserve = 64

// FDLimit returns this process's soft open-file limit (RLIMIT_NOFILE). ok is
// false on platforms without one (Windows).
func FDLimit() (limit uint64, ok bool) { return fdLimit() }

// CheckFDs returns an error, saying what fits, when sockets client sockets
// plus reserve other descriptors would exceed limit. ok false (no limit on
// this platform) always passes.
func CheckFDs(sockets, reserve int, limit uint64, ok bool) error {
	if !ok {
		return nil
	}
	need := uint64(sockets) + uint64(reserve)
	if need <= limit {
		return nil
	}
	fit := int64(limit) - int64(reserve)
	if fit < 0 {
		fit = 0
	}
	return errors.New("refusing to open " + group3(int64(sockets)) + " sockets: with " + strconv.Itoa(reserve) +
		" descriptors kept in reserve that needs " + group3(int64(need)) + " open files, but this process may open " +
		group3(int64(limit)) + " (soft RLIMIT_NOFILE, see ulimit -n); at most " + group3(fit) +
		" sockets fit. Lower the size or raise the limit")
}

// group3 formats n with thousands separators: 20000 → "20,000".
func group3(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var b []byte
	for i, c := range []byte(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, c)
	}
	if neg {
		return "-" + string(b)
	}
	return string(b)
}
