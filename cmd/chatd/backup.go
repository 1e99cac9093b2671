package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"chatd/httpapi/apiclient"
	"chatd/internal/proc"
	"chatd/storage"
)

// The backup and restore commands.

func backupCommand() *command {
	return &command{
		name: "backup", args: "FILE [flags]", settings: true, nargs: 1,
		summary: "copy the database to FILE: online through the running server's admin API, or directly when none runs",
		flagHelp: []string{"--force\n\treplace FILE if it exists",
			"--timeout duration\n\thow long the copy may take (default 1h)"},
		setup: func(fs *flag.FlagSet) func(context.Context, *cmdEnv) error {
			force := fs.Bool("force", false, "replace FILE if it exists")
			timeout := fs.Duration("timeout", time.Hour, "how long the copy may take")
			return func(ctx context.Context, env *cmdEnv) error {
				ctx, cancel := context.WithTimeout(ctx, *timeout)
				defer cancel()
				return backup(ctx, env, env.pos[0], *force)
			}
		},
	}
}

func restoreCommand() *command {
	return &command{
		name: "restore", args: "FILE [flags]", settings: true, nargs: 1,
		summary:  "replace the data folder's database with the backup FILE (the server must be stopped)",
		flagHelp: []string{"--force\n\treplace an existing database (it is kept as chat.db.replaced-<time>)"},
		setup: func(fs *flag.FlagSet) func(context.Context, *cmdEnv) error {
			force := fs.Bool("force", false, "replace an existing database")
			return func(ctx context.Context, env *cmdEnv) error { return restore(env, env.pos[0], *force) }
		},
	}
}

// backup writes a copy of the database to file: from the running server
// (GET /admin/v1/backup), or by opening the store itself when no server
// holds the data folder. The copy goes to a temporary file next to file,
// is synced and verified (storage.Verify), and only then renamed to file.
func backup(ctx context.Context, env *cmdEnv, file string, force bool) error {
	cfg := &env.cfg.Config
	if err := boltOnly(cfg, "backup"); err != nil {
		return err
	}
	if _, err := os.Stat(file); err == nil && !force {
		return fmt.Errorf("%s exists; pass --force to replace it", file)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".partial-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename: already gone
	how := ""
	held, _, err := proc.Probe(cfg.DataDir)
	if err != nil {
		tmp.Close()
		return err
	}
	var n int64
	if held {
		how = "from the running server"
		n, err = fetchBackup(ctx, env, tmp)
	} else {
		how = "directly (no server running)"
		n, err = offlineBackup(cfg.DataDir, tmp)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := storage.Verify(tmp.Name()); err != nil {
		return fmt.Errorf("backup: the copy does not check out, not kept: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(env.stdout, "backup of %s written to %s (%d bytes, %s)\n", cfg.DataDir, file, n, how)
	return nil
}

// fetchBackup streams the running server's copy into w and checks that
// all of it arrived.
func fetchBackup(ctx context.Context, env *cmdEnv, w io.Writer) (int64, error) {
	cfg := &env.cfg.Config
	ri, err := proc.ReadRunInfo(cfg.DataDir)
	if err != nil {
		return 0, fmt.Errorf("chatd is running but has not published %s yet (still starting?): %w", proc.RunFile, err)
	}
	c, err := serverAdmin(cfg, ri)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ri.HTTPURL()+"/admin/v1/backup", nil)
	if err != nil {
		return 0, err
	}
	apiclient.SignRequest(req, c.AdminKey, nil, time.Now())
	resp, err := (&http.Client{}).Do(req) // bounded by ctx: a big file takes a while
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var env struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &env) == nil && env.Error.Code != "" {
			return 0, fmt.Errorf("the server refused: %s: %s (HTTP %d)", env.Error.Code, env.Error.Message, resp.StatusCode)
		}
		return 0, fmt.Errorf("the server answered HTTP %d: %.200s", resp.StatusCode, b)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("after %d bytes: %w", n, err)
	}
	if want, _ := strconv.ParseInt(resp.Header.Get("X-Chatd-Backup-Size"), 10, 64); resp.ContentLength >= 0 && n != resp.ContentLength || want > 0 && n != want {
		return n, fmt.Errorf("the copy was cut short: %d of %d bytes", n, want)
	}
	return n, nil
}

// offlineBackup opens the store (replaying any WAL a crash left) and
// copies it.
func offlineBackup(dataDir string, w io.Writer) (int64, error) {
	path := filepath.Join(dataDir, dbFile)
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("no database to back up: %w", err)
	}
	st, err := storage.Open(path, storage.Options{CheckpointInterval: -1})
	if err != nil {
		return 0, err
	}
	n, err := st.Backup(w)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// restore puts a backup in place of the data folder's database. It holds
// the data folder's lock throughout, so no server starts meanwhile. An
// existing database and its write-ahead log (which belongs to it, not to
// the backup) are moved aside, not deleted, and only with force.
func restore(env *cmdEnv, file string, force bool) error {
	cfg := &env.cfg.Config
	if err := boltOnly(cfg, "restore"); err != nil {
		return err
	}
	if err := storage.Verify(file); err != nil {
		return fmt.Errorf("restore: %s is not a usable backup: %w", file, err)
	}
	if err := proc.PrepareDataDir(cfg.DataDir); err != nil {
		return err
	}
	lock, err := proc.Acquire(cfg.DataDir)
	if err != nil {
		var re *proc.RunningError
		if errors.As(err, &re) {
			return fmt.Errorf("restore: chatd (pid %d) is running on %s; stop it first (chatd stop --data %s)", re.PID, cfg.DataDir, cfg.DataDir)
		}
		return err
	}
	defer lock.Release()

	path := filepath.Join(cfg.DataDir, dbFile)
	var existing []string
	for _, p := range []string{path, path + "-wal", path + "-wal.1", path + "-wal.2"} {
		if _, err := os.Stat(p); err == nil {
			existing = append(existing, p)
		}
	}
	if len(existing) > 0 {
		if !force {
			return fmt.Errorf("restore: %s already holds a database (%s); pass --force to replace it (it is moved aside, not deleted)", cfg.DataDir, filepath.Base(existing[0]))
		}
		stamp := time.Now().UTC().Format("20060102T150405Z")
		for _, p := range existing {
			aside := p + ".replaced-" + stamp
			if err := os.Rename(p, aside); err != nil {
				return fmt.Errorf("restore: move %s aside: %w", p, err)
			}
			fmt.Fprintf(env.stdout, "moved %s to %s\n", p, aside)
		}
	}
	if err := copyFile(file, path+".restoring"); err != nil {
		os.Remove(path + ".restoring")
		return fmt.Errorf("restore: %w", err)
	}
	if err := os.Rename(path+".restoring", path); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if d, err := os.Open(cfg.DataDir); err == nil {
		d.Sync() // not supported on every OS; the copy itself is synced
		d.Close()
	}
	fmt.Fprintf(env.stdout, "restored %s from %s\n", path, file)
	return nil
}

// copyFile copies src to a new file dst (mode 0600) and syncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
