//go:build !linux

package reactor

import "errors"

// writeDirect is not used off Linux: SendNow queues instead (it treats
// the error as a full socket).
func writeDirect(int, []byte, []byte) (int, error) {
	return 0, errors.ErrUnsupported
}
