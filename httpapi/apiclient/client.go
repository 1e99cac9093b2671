// Package apiclient calls chatd's HTTP API: the signed server admin API, the
// signed app API and the token user API. Standard library only, so chatctl,
// chatbench and host backends written in Go can use it without pulling in
// the server.
//
// The wire format and the signing algorithm are documented in
// docs/http-api.md.
package apiclient

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Request-signing headers.
const (
	HeaderApp       = "X-Chatd-App"
	HeaderTimestamp = "X-Chatd-Timestamp"
	HeaderNonce     = "X-Chatd-Nonce"
	HeaderSignature = "X-Chatd-Signature"
)

// maxResponse caps a response body the client reads.
const maxResponse = 64 << 20

// Client calls one chatd server. The zero HTTP means http.DefaultClient.
// App and Secret sign /api/ requests; AdminKey signs /admin/ requests. A
// Client is safe for concurrent use once its fields are set.
type Client struct {
	BaseURL  string // e.g. "http://127.0.0.1:22887"
	App      string
	Secret   string
	AdminKey string
	HTTP     *http.Client
	// Now is the clock used for X-Chatd-Timestamp. Nil means time.Now.
	Now func() time.Time
}

// APIError is a failure answered by the server (Status is the HTTP status;
// Code and Message come from the JSON error, or describe a non-JSON
// answer with an empty Code).
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return "chatd: HTTP " + strconv.Itoa(e.Status) + ": " + e.Message
	}
	return "chatd: " + e.Code + ": " + e.Message + " (HTTP " + strconv.Itoa(e.Status) + ")"
}

// Sign returns the lowercase hex HMAC-SHA256 of
// method "\n" pathWithQuery "\n" ts "\n" nonce "\n" body under key.
func Sign(key, method, pathWithQuery, ts, nonce string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	io.WriteString(m, method)
	m.Write([]byte{'\n'})
	io.WriteString(m, pathWithQuery)
	m.Write([]byte{'\n'})
	io.WriteString(m, ts)
	m.Write([]byte{'\n'})
	io.WriteString(m, nonce)
	m.Write([]byte{'\n'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// NewNonce returns a fresh random nonce: 22 characters of [A-Za-z0-9_-].
func NewNonce() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("apiclient: crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// SignRequest adds X-Chatd-Timestamp, X-Chatd-Nonce and X-Chatd-Signature
// to req for key, signing body (which must be req's body). The signed path
// is req.URL.RequestURI(): exactly what goes on the request line.
func SignRequest(req *http.Request, key string, body []byte, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	nonce := NewNonce()
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, Sign(key, req.Method, req.URL.RequestURI(), ts, nonce, body))
}

// envelope is every JSON answer but the user API's.
type envelope struct {
	OK    bool            `json:"ok"`
	Data  json.RawMessage `json:"data"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Do calls method path (path may carry a query) with body, signing it
// according to the path: /admin/… with AdminKey, /api/… with App and
// Secret; anything else is sent unsigned. body is nil (no body), []byte or
// json.RawMessage (sent as is) or any value (sent as its JSON). On success
// the answer's data is decoded into out unless out is nil; a failure is an
// *APIError.
func (c *Client) Do(ctx context.Context, method, path string, body any, out any) error {
	raw, err := encodeBody(body)
	if err != nil {
		return err
	}
	req, err := c.newRequest(ctx, method, path, raw)
	if err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(path, "/admin/"):
		if c.AdminKey == "" {
			return errors.New("apiclient: AdminKey is required for " + path)
		}
		SignRequest(req, c.AdminKey, raw, c.now())
	case strings.HasPrefix(path, "/api/"):
		if c.App == "" || c.Secret == "" {
			return errors.New("apiclient: App and Secret are required for " + path)
		}
		req.Header.Set(HeaderApp, c.App)
		SignRequest(req, c.Secret, raw, c.now())
	}
	status, b, err := c.roundTrip(req)
	if err != nil {
		return err
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return &APIError{Status: status, Message: "non-JSON answer: " + snippet(b)}
	}
	if !env.OK {
		if env.Error == nil {
			return &APIError{Status: status, Message: "answer has neither data nor error: " + snippet(b)}
		}
		return &APIError{Status: status, Code: env.Error.Code, Message: env.Error.Message}
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return fmt.Errorf("apiclient: decode %s %s answer: %w", method, path, err)
		}
	}
	return nil
}

// ClientDo runs one user action through POST /v1/client with a chat token
// and returns the core's reply JSON as it is ({"reply_to":…,"ok":…}); the
// action's own failure is inside the reply, not an error. An HTTP-level
// failure (bad token, too large…) is an *APIError.
func (c *Client) ClientDo(ctx context.Context, token string, action any) (json.RawMessage, error) {
	raw, err := encodeBody(action)
	if err != nil {
		return nil, err
	}
	req, err := c.newRequest(ctx, http.MethodPost, "/v1/client", raw)
	if err != nil {
		return nil, err
	}
	req.Header.Set(HeaderApp, c.App)
	req.Header.Set("Authorization", "Bearer "+token)
	status, b, err := c.roundTrip(req)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		var env envelope
		if err := json.Unmarshal(b, &env); err != nil || env.Error == nil {
			return nil, &APIError{Status: status, Message: "unexpected answer: " + snippet(b)}
		}
		return nil, &APIError{Status: status, Code: env.Error.Code, Message: env.Error.Message}
	}
	return json.RawMessage(b), nil
}

func (c *Client) newRequest(ctx context.Context, method, path string, raw []byte) (*http.Request, error) {
	var rd io.Reader
	if raw != nil {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, rd)
	if err != nil {
		return nil, fmt.Errorf("apiclient: %w", err)
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

func (c *Client) roundTrip(req *http.Request) (int, []byte, error) {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("apiclient: %s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return 0, nil, fmt.Errorf("apiclient: %s %s: read answer: %w", req.Method, req.URL.Path, err)
	}
	return resp.StatusCode, b, nil
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// encodeBody turns a Do body into bytes (nil for no body).
func encodeBody(body any) ([]byte, error) {
	switch b := body.(type) {
	case nil:
		return nil, nil
	case []byte:
		return b, nil
	case json.RawMessage:
		return b, nil
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("apiclient: encode body: %w", err)
	}
	return raw, nil
}

// snippet is the start of a body for an error message.
func snippet(b []byte) string {
	const n = 200
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
