package reactor

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// writeDirect writes hdr and then body to the non-blocking socket fd with
// one writev(2), retrying on EINTR. It returns the bytes written: fewer
// than both when the socket buffer filled, 0 with an error when it was
// already full (EAGAIN) or broken. The iovecs live on the stack, so the
// call allocates nothing.
func writeDirect(fd int, hdr, body []byte) (int, error) {
	var iov [2]unix.Iovec
	iov[0].Base = &hdr[0]
	iov[0].SetLen(len(hdr))
	cnt := 1
	if len(body) > 0 {
		iov[1].Base = &body[0]
		iov[1].SetLen(len(body))
		cnt = 2
	}
	for {
		n, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(cnt))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), nil
	}
}
