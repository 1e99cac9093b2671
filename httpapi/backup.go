package httpapi

import (
	"errors"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// adminBackup streams a consistent copy of the data file (GET
// /admin/v1/backup): Config.Backup checkpoints, then copies a read
// transaction's snapshot, so the copy holds every write acknowledged
// before the request. The copy is sent with its Content-Length, so a
// client sees a copy that was cut short (the connection ends before that
// many bytes). Writes go on meanwhile; the snapshot's read transaction
// stays open until the client has read the whole file.
func (s *Server) adminBackup(ctx *fasthttp.RequestCtx, _ *reqInfo) error {
	if s.cfg.Backup == nil {
		return chat.Errf(chat.CodeUnavailable, "this server cannot make backups over HTTP")
	}
	pr, pw := io.Pipe()
	size := make(chan int64, 1)
	failed := make(chan error, 1)
	go func() {
		_, err := s.cfg.Backup(pw, func(n int64) { size <- n })
		if err != nil {
			s.log.Error().Err(err).Msg("http api: backup failed")
		}
		failed <- err
		pw.CloseWithError(err) // nil: EOF
	}()
	select {
	case n := <-size:
		ctx.Response.Header.SetContentType("application/octet-stream")
		ctx.Response.Header.Set("Content-Disposition", `attachment; filename="chat.db"`)
		ctx.Response.Header.Set("X-Chatd-Backup-Size", strconv.FormatInt(n, 10))
		// fasthttp closes the stream once the body is written or the
		// client goes away, which ends the copy.
		ctx.SetBodyStream(&progressReader{r: pr, conn: ctx.Conn()}, int(n))
		return nil
	case err := <-failed:
		pr.Close()
		if errors.Is(err, chat.ErrDiskFull) {
			return chat.Errf(chat.CodeUnavailable, "disk full: the backup needs a checkpoint, which cannot write to the data disk; free some space and retry")
		}
		return err
	}
}

// backupStall is how long the copy may make no progress towards the
// client before the connection is closed.
const backupStall = 30 * time.Second

// progressReader pushes the connection's write deadline on before each
// chunk of the body: the server's WriteTimeout (30 s) bounds a whole
// answer, and a copy of a large file takes longer; a client that stops
// reading for backupStall is still dropped. fasthttp reads the body and
// writes it to the connection on one goroutine.
type progressReader struct {
	r    *io.PipeReader
	conn net.Conn
}

func (p *progressReader) Read(b []byte) (int, error) {
	p.conn.SetWriteDeadline(time.Now().Add(backupStall))
	return p.r.Read(b)
}

func (p *progressReader) Close() error { return p.r.Close() }
