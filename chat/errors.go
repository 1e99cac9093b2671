package chat

// Code is one of the fixed client-visible error codes.
type Code string

const (
	CodeBadRequest   Code = "bad_request"
	CodeUnauthorized Code = "unauthorized"
	CodeForbidden    Code = "forbidden"
	CodeNotFound     Code = "not_found"
	CodeConflict     Code = "conflict"
	CodeRateLimited  Code = "rate_limited"
	CodeTooLarge     Code = "too_large"
	CodeUnavailable  Code = "unavailable"
	CodeInternal     Code = "internal"
)

// Codes lists every code, for docs and metrics.
var Codes = []Code{CodeBadRequest, CodeUnauthorized, CodeForbidden, CodeNotFound,
	CodeConflict, CodeRateLimited, CodeTooLarge, CodeUnavailable, CodeInternal}

// Error is a client-visible failure: a code from the fixed set and a human
// message.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// RetryAfter, set on rate_limited, is how many milliseconds until
	// the request would be allowed.
	RetryAfter int64 `json:"retry_after,omitempty"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errf builds an *Error.
func Errf(code Code, msg string) *Error { return &Error{Code: code, Message: msg} }

// HTTPStatus maps a code to the HTTP status the HTTP API answers with.
func (c Code) HTTPStatus() int {
	switch c {
	case CodeBadRequest:
		return 400
	case CodeUnauthorized:
		return 401
	case CodeForbidden:
		return 403
	case CodeNotFound:
		return 404
	case CodeConflict:
		return 409
	case CodeTooLarge:
		return 413
	case CodeRateLimited:
		return 429
	case CodeUnavailable:
		return 503
	}
	return 500
}
