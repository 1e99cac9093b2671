package chat

import (
	"encoding/json"
	"net/url"
	"strings"
)

// Fields a client renders as a link or as an image, audio or video source
// (a message's url, cover and image, user and group avatars) hold only
// absolute http or https URLs. Anything else is how content attacks the
// pages that show it: javascript: and vbscript: run script on click, data:
// smuggles a page or an SVG with script, file: reads the reader's disk.
//
// Uploads are served by chatd itself: a message's url may name one as
// chatd-file:<id> (files.go), which the content scan lets through for
// media messages only, to be resolved and checked by resolveFile.

// checkURL says why v may not be a link or media source; "" when it may.
func checkURL(v string) string {
	u, err := url.Parse(v)
	if err != nil {
		return "is not a URL"
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	default:
		return "must be an http:// or https:// URL"
	}
	if u.Host == "" || u.Opaque != "" {
		return "must be an absolute http:// or https:// URL with a host"
	}
	return ""
}

// urlError is the client error for a field that failed checkURL.
func urlError(field, why string) *Error {
	return Errf(CodeBadRequest, "\""+field+"\" "+why)
}

// mediaHostProblem says why the http(s) URL v names a host outside
// Config.MediaHosts; "" when it may (or when no list is set).
func (c *Core) mediaHostProblem(v string) string {
	if len(c.cfg.MediaHosts) == 0 {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil {
		return "is not a URL"
	}
	host := strings.ToLower(u.Hostname())
	for _, h := range c.cfg.MediaHosts {
		h = strings.ToLower(h)
		if host == h || strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:]) {
			return ""
		}
	}
	return "names host \"" + host + "\", which is not in the media hosts this server allows (media_url_hosts); upload the file instead"
}

// checkMediaContent applies Config.MediaHosts to a media message's url
// and cover.
func (c *Core) checkMediaContent(content []byte) *Error {
	var f struct {
		URL   string `json:"url"`
		Cover string `json:"cover"`
	}
	if json.Unmarshal(content, &f) != nil {
		return nil // validateContent has judged it
	}
	for _, v := range []struct{ name, val string }{{"url", f.URL}, {"cover", f.Cover}} {
		if v.val == "" || strings.HasPrefix(v.val, FileURLScheme) {
			continue
		}
		if why := c.mediaHostProblem(v.val); why != "" {
			return urlError("content."+v.name, why)
		}
	}
	return nil
}
