package chat

import (
	"net/url"
	"strings"
)

// Fields a client renders as a link or as an image, audio or video source
// (a message's url, cover and image, user and group avatars) hold only
// absolute http or https URLs. Anything else is how content attacks the
// pages that show it: javascript: and vbscript: run script on click, data:
// smuggles a page or an SVG with script, file: reads the reader's disk.
//
// Uploads will be served by chatd itself; a reference to one (a chatd file
// id) is meant to be accepted here, as a scheme of its own added to
// checkURL, so every field that takes a URL takes it in one place.

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
