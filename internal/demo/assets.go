// Package demo holds the demo pages chatd serves under /demo/ (built from
// web/ and embedded in the binary) and their small backend, which sets up
// a demo app with demo users and hands out their chat tokens to callers on
// the server's own machine. httpapi routes /demo/ here when the `demo`
// setting is on; docs/demo.md describes the pages.
package demo

//go:generate sh -c "cd ../../web && npm ci --no-audit --no-fund --loglevel=error && node build.mjs"

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// assets are the built pages: web/build.mjs writes them, CI checks that
// the committed ones are current.
//
//go:embed all:assets
var assets embed.FS

// Asset is one embedded file, ready to serve.
type Asset struct {
	Body        []byte
	ContentType string
	// ETag is a strong validator: a quoted hash of Body.
	ETag string
}

// types are the content types of the files web/ produces. Anything else
// is served as application/octet-stream.
var types = map[string]string{
	".html":  "text/html; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".ico":   "image/x-icon",
	".json":  "application/json",
	".txt":   "text/plain; charset=utf-8",
	".webp":  "image/webp",
	".woff2": "font/woff2",
}

// table maps a file's path under assets/ to it; built once at start.
var table = func() map[string]*Asset {
	t := map[string]*Asset{}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		ct, ok := types[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(b)
		t[strings.TrimPrefix(p, "assets/")] = &Asset{Body: b, ContentType: ct, ETag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic("demo: embedded assets: " + err.Error())
	}
	return t
}()

// Lookup returns the asset at name, the path after /demo/ ("" and names
// ending in "/" mean that folder's index.html).
func Lookup(name string) (*Asset, bool) {
	if name == "" || strings.HasSuffix(name, "/") {
		name += "index.html"
	}
	a, ok := table[name]
	return a, ok
}

// Names lists the embedded files, for tests.
func Names() []string {
	out := make([]string, 0, len(table))
	for n := range table {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
