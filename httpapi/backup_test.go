package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"chatd/chat"
	"chatd/httpapi/apiclient"
)

// TestAdminBackup: GET /admin/v1/backup streams what Config.Backup writes
// with its length as Content-Length; a backup that fails before it starts
// (a full disk) is unavailable "disk full"; only the admin key may ask.
func TestAdminBackup(t *testing.T) {
	var fail atomic.Bool
	h := newHarness(t, func(c *Config) {
		c.Backup = func(w io.Writer, sized func(int64)) (int64, error) {
			if fail.Load() {
				return 0, fmt.Errorf("storage: backup: %w: no space left on device", chat.ErrDiskFull)
			}
			body := strings.Repeat("chatd", 100_000)
			sized(int64(len(body)))
			n, err := io.WriteString(w, body)
			return int64(n), err
		}
	})
	get := func(key string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), "GET", baseURL+"/admin/v1/backup", nil)
		if err != nil {
			t.Fatal(err)
		}
		apiclient.SignRequest(req, key, nil, time.Now())
		resp, err := h.local.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	resp := get(testAdminKey)
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != 500_000 || len(b) != 500_000 || !strings.HasPrefix(string(b), "chatdchatd") {
		t.Fatalf("backup: %d, length %d, read %d bytes, %v", resp.StatusCode, resp.ContentLength, len(b), err)
	}

	fail.Store(true)
	resp = get(testAdminKey)
	b, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || !strings.Contains(string(b), `"unavailable"`) || !strings.Contains(string(b), "disk full") {
		t.Fatalf("backup on a full disk: %d %s", resp.StatusCode, b)
	}

	resp = get("not-the-admin-key-0123456789abcdef0123456789")
	if resp.StatusCode != 401 && resp.StatusCode != 403 {
		t.Fatalf("backup with a wrong key: %d", resp.StatusCode)
	}
}
