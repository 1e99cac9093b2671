package chat

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// MessageTypes lists the message types and what their content must hold.
var MessageTypes = map[string]string{
	"text":     `{"text": string, non-empty}`,
	"image":    `{"url": string, "width"?: int, "height"?: int, "size"?: int}`,
	"voice":    `{"url": string, "duration": seconds}`,
	"video":    `{"url": string, "duration"?: seconds, "cover"?: url}`,
	"file":     `{"url": string, "name": string, "size"?: int}`,
	"rich":     `{"html": string} or {"blocks": array}`,
	"card":     `{"title": string, "url"?: string, "image"?: string, "desc"?: string}`,
	"location": `{"lat": number, "lng": number, "name"?: string}`,
	"custom":   `any JSON object`,
	"notice":   `{"text": string} (system notices; the server API only)`,
}

// validateContent checks a message's content for its type and returns the
// session-list preview.
func validateContent(typ string, content json.RawMessage, limit int) (string, *Error) {
	if len(content) > limit {
		return "", Errf(CodeTooLarge, "content is "+itoa(uint64(len(content)))+" bytes; the limit is "+itoa(uint64(limit)))
	}
	if _, ok := MessageTypes[typ]; !ok {
		return "", Errf(CodeBadRequest, "unknown message type \""+clip(typ, 32)+"\"; types are text, image, voice, video, file, rich, card, location, custom, notice")
	}
	if len(content) == 0 {
		return "", Errf(CodeBadRequest, "missing content")
	}
	var f contentScan
	if !scanContent(content, &f) {
		return "", Errf(CodeBadRequest, "content must be a JSON object")
	}
	if f.typeErr {
		return "", Errf(CodeBadRequest, "content fields text, url, cover, image, name, title and html must be strings; duration, lat and lng numbers")
	}
	if why := jsonTextProblem(content); why != "" {
		return "", Errf(CodeBadRequest, "content "+why)
	}
	if f.badURL != "" {
		return "", urlError("content."+f.badURL, f.badURLWhy)
	}
	if f.fileURL && typ != "image" && typ != "voice" && typ != "video" && typ != "file" {
		return "", urlError("content.url", "names an upload (chatd-file:), which only image, voice, video and file messages may carry")
	}
	need := func(has bool, v, field string) *Error {
		if !has || v == "" {
			return Errf(CodeBadRequest, typ+" content needs a non-empty \""+field+"\"")
		}
		return nil
	}
	switch typ {
	case "text", "notice":
		if e := need(f.hasText, f.text, "text"); e != nil {
			return "", e
		}
		return previewText(f.text), nil
	case "image", "voice", "video":
		if e := need(f.hasURL, f.url, "url"); e != nil {
			return "", e
		}
		if typ == "voice" && !f.hasDuration {
			return "", Errf(CodeBadRequest, "voice content needs \"duration\"")
		}
	case "file":
		if e := need(f.hasURL, f.url, "url"); e != nil {
			return "", e
		}
		if e := need(f.hasName, f.name, "name"); e != nil {
			return "", e
		}
		return "[file] " + previewText(f.name), nil
	case "rich":
		if f.html == "" && !f.hasBlocks {
			return "", Errf(CodeBadRequest, "rich content needs \"html\" or \"blocks\"")
		}
	case "card":
		if e := need(f.hasTitle, f.title, "title"); e != nil {
			return "", e
		}
		return "[card] " + previewText(f.title), nil
	case "location":
		if !f.lat || !f.lng || f.latV < -90 || f.latV > 90 || f.lngV < -180 || f.lngV > 180 {
			return "", Errf(CodeBadRequest, "location content needs \"lat\" in [-90, 90] and \"lng\" in [-180, 180]")
		}
	}
	return "[" + typ + "]", nil
}

// previewText is the first 60 characters of s on one line.
func previewText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= 60 {
		return s
	}
	n := 0
	for i := range s {
		if n == 60 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// clientSendCheck applies what only a client's send (WebSocket, or POST
// /v1/client) must obey: a notice is the host site's voice, which clients
// render as a system message, so only the server API may send one.
func clientSendCheck(typ string) *Error {
	if typ == "notice" {
		return Errf(CodeForbidden, "type \"notice\" is reserved for the server API (system notices); send \"text\" instead")
	}
	return nil
}
