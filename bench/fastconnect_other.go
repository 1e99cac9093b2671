//go:build !linux

package bench

import (
	"context"
	"errors"
	"syscall"
)

// fastSupported reports whether this platform has the fast connector.
const fastSupported = false

// startFast is not available here: the connect scenario uses the
// portable client.
func startFast(context.Context, fastOptions, []int) (fastHolder, error) {
	return nil, errors.New("the fast connector needs Linux")
}

// bindNoPort is the dialer's Control function: nothing to do here.
var bindNoPort func(network, address string, rc syscall.RawConn) error
