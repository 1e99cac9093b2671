package apiclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// WebhookEndpoint is one URL an app receives webhook events at
// (docs/webhooks.md).
type WebhookEndpoint struct {
	ID        string   `json:"id"`
	App       string   `json:"app"`
	URL       string   `json:"url"`
	Events    []string `json:"events"`
	Secret    string   `json:"secret"`
	Enabled   bool     `json:"enabled"`
	CreatedAt int64    `json:"created_at"`
	UpdatedAt int64    `json:"updated_at"`
}

// WebhookEndpointInput creates an endpoint (URL and Events needed) or
// changes one (ID needed; nil fields keep their values).
type WebhookEndpointInput struct {
	ID      string   `json:"id,omitempty"`
	URL     *string  `json:"url,omitempty"`
	Events  []string `json:"events,omitempty"`
	Secret  *string  `json:"secret,omitempty"`
	Enabled *bool    `json:"enabled,omitempty"`
}

// WebhookDelivery is one event for one endpoint and how sending it went.
type WebhookDelivery struct {
	ID           string          `json:"id"`
	Endpoint     string          `json:"endpoint"`
	EventID      string          `json:"event_id"`
	Type         string          `json:"type"`
	Status       string          `json:"status"` // pending, delivered, failed
	Attempts     int             `json:"attempts"`
	CreatedAt    int64           `json:"created_at"`
	NextAt       int64           `json:"next_at,omitempty"`
	LastAttempt  int64           `json:"last_attempt,omitempty"`
	ResponseCode int             `json:"response_code,omitempty"`
	Error        string          `json:"error,omitempty"`
	DeliveredAt  int64           `json:"delivered_at,omitempty"`
	Body         json.RawMessage `json:"body,omitempty"`
}

// Redeliver names deliveries to send again: DeliveryIDs, or the events
// FromEvent..ToEvent (optionally only Endpoint's, only failed ones).
type Redeliver struct {
	DeliveryIDs []string `json:"delivery_ids,omitempty"`
	FromEvent   string   `json:"from_event,omitempty"`
	ToEvent     string   `json:"to_event,omitempty"`
	Endpoint    string   `json:"endpoint,omitempty"`
	FailedOnly  bool     `json:"failed_only,omitempty"`
}

// WebhookEndpoints lists the app's endpoints.
func (c *Client) WebhookEndpoints(ctx context.Context) ([]WebhookEndpoint, error) {
	var out []WebhookEndpoint
	err := c.Do(ctx, http.MethodGet, "/api/v1/webhooks", nil, &out)
	return out, err
}

// CreateWebhookEndpoint registers an endpoint; the answer carries its
// secret.
func (c *Client) CreateWebhookEndpoint(ctx context.Context, in WebhookEndpointInput) (WebhookEndpoint, error) {
	var out WebhookEndpoint
	err := c.Do(ctx, http.MethodPost, "/api/v1/webhooks", in, &out)
	return out, err
}

// UpdateWebhookEndpoint changes an endpoint.
func (c *Client) UpdateWebhookEndpoint(ctx context.Context, in WebhookEndpointInput) (WebhookEndpoint, error) {
	var out WebhookEndpoint
	err := c.Do(ctx, http.MethodPost, "/api/v1/webhooks/update", in, &out)
	return out, err
}

// DeleteWebhookEndpoint removes an endpoint.
func (c *Client) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodPost, "/api/v1/webhooks/delete", map[string]string{"id": id}, nil)
}

// WebhookDeliveries lists deliveries, newest event first: up to limit
// (0: 50), before a delivery id, of one status ("" any); withBody adds the
// bodies sent.
func (c *Client) WebhookDeliveries(ctx context.Context, limit int, before, status string, withBody bool) ([]WebhookDelivery, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if before != "" {
		q.Set("before", before)
	}
	if status != "" {
		q.Set("status", status)
	}
	if withBody {
		q.Set("with_body", "1")
	}
	p := "/api/v1/webhooks/deliveries"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var out struct {
		Deliveries []WebhookDelivery `json:"deliveries"`
	}
	err := c.Do(ctx, http.MethodGet, p, nil, &out)
	return out.Deliveries, err
}

// RedeliverWebhooks queues deliveries again and says how many.
func (c *Client) RedeliverWebhooks(ctx context.Context, in Redeliver) (int, error) {
	var out struct {
		Queued int `json:"queued"`
	}
	err := c.Do(ctx, http.MethodPost, "/api/v1/webhooks/redeliver", in, &out)
	return out.Queued, err
}

// BeforeSendHook is an app's before-send hook (docs/webhooks.md).
type BeforeSendHook struct {
	URL       string `json:"url"`
	Secret    string `json:"secret"`
	TimeoutMS int    `json:"timeout_ms"`
	OnTimeout string `json:"on_timeout"` // allow or reject
	Enabled   bool   `json:"enabled"`
	UpdatedAt int64  `json:"updated_at"`
}

// BeforeSendHookInput sets the hook; nil fields keep their values.
type BeforeSendHookInput struct {
	URL       *string `json:"url,omitempty"`
	Secret    *string `json:"secret,omitempty"`
	TimeoutMS *int    `json:"timeout_ms,omitempty"`
	OnTimeout *string `json:"on_timeout,omitempty"`
	Enabled   *bool   `json:"enabled,omitempty"`
}

// BeforeSendHook reads the app's hook (not_found when it has none).
func (c *Client) BeforeSendHook(ctx context.Context) (BeforeSendHook, error) {
	var out BeforeSendHook
	err := c.Do(ctx, http.MethodGet, "/api/v1/webhooks/before-send", nil, &out)
	return out, err
}

// SetBeforeSendHook creates or changes the app's hook.
func (c *Client) SetBeforeSendHook(ctx context.Context, in BeforeSendHookInput) (BeforeSendHook, error) {
	var out BeforeSendHook
	err := c.Do(ctx, http.MethodPost, "/api/v1/webhooks/before-send", in, &out)
	return out, err
}
