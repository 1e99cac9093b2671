package httpapi

import (
	"context"
	"strings"
	"testing"

	"chatd/httpapi/apiclient"
)

// The endpoints API: create, list, update, delete, each app seeing only
// its own endpoints, and the errors a host gets for bad input. (Deliveries
// and redelivery over HTTP run against a real receiver in
// internal/e2e/webhook_test.go.)
func TestWebhookEndpointsAPI(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	shop, blog := h.app("shop"), h.app("blog")
	url := "https://hooks.example.com/chat"
	ep, err := shop.CreateWebhookEndpoint(ctx, apiclient.WebhookEndpointInput{URL: &url, Events: []string{"message.created", "push.offline"}})
	if err != nil {
		t.Fatal(err)
	}
	if ep.ID == "" || !ep.Enabled || !strings.HasPrefix(ep.Secret, "whsec_") || ep.App != "shop" {
		t.Fatalf("created %+v", ep)
	}
	if eps, err := shop.WebhookEndpoints(ctx); err != nil || len(eps) != 1 || eps[0].ID != ep.ID {
		t.Fatalf("shop's list = %+v, %v", eps, err)
	}
	if eps, err := blog.WebhookEndpoints(ctx); err != nil || len(eps) != 0 {
		t.Fatalf("blog sees %+v, %v", eps, err)
	}
	off := false
	up, err := shop.UpdateWebhookEndpoint(ctx, apiclient.WebhookEndpointInput{ID: ep.ID, Enabled: &off, Events: []string{"*"}})
	if err != nil || up.Enabled || up.URL != url || len(up.Events) != 1 || up.Events[0] != "*" || up.Secret != ep.Secret {
		t.Fatalf("updated %+v, %v", up, err)
	}
	// Another app cannot touch it.
	apiErr(t, blog.DeleteWebhookEndpoint(ctx, ep.ID), 404, "not_found")
	bad := "ftp://x/"
	apiErr(t, shop.Do(ctx, "POST", "/api/v1/webhooks", apiclient.WebhookEndpointInput{URL: &bad, Events: []string{"*"}}, nil), 400, "bad_request")
	ae := apiErr(t, shop.Do(ctx, "POST", "/api/v1/webhooks", apiclient.WebhookEndpointInput{URL: &url, Events: []string{"message.nope"}}, nil), 400, "bad_request")
	if !strings.Contains(ae.Message, "message.created") {
		t.Errorf("unknown event message %q does not list the types", ae.Message)
	}
	apiErr(t, shop.Do(ctx, "POST", "/api/v1/webhooks/update", map[string]any{"enabled": true}, nil), 400, "bad_request")
	apiErr(t, shop.Do(ctx, "GET", "/api/v1/webhooks/deliveries?status=odd", nil, nil), 400, "bad_request")
	apiErr(t, shop.Do(ctx, "POST", "/api/v1/webhooks/redeliver", map[string]any{}, nil), 400, "bad_request")
	if ds, err := shop.WebhookDeliveries(ctx, 0, "", "", false); err != nil || len(ds) != 0 {
		t.Fatalf("deliveries = %+v, %v", ds, err)
	}
	// The before-send hook.
	apiErr(t, shop.Do(ctx, "GET", "/api/v1/webhooks/before-send", nil, nil), 404, "not_found")
	hk, err := shop.SetBeforeSendHook(ctx, apiclient.BeforeSendHookInput{URL: &url, OnTimeout: ptrTo("reject")})
	if err != nil || !hk.Enabled || hk.TimeoutMS != 300 || hk.OnTimeout != "reject" || hk.Secret == "" {
		t.Fatalf("set hook = %+v, %v", hk, err)
	}
	if got, err := shop.BeforeSendHook(ctx); err != nil || got.URL != url {
		t.Fatalf("get hook = %+v, %v", got, err)
	}
	apiErr(t, shop.Do(ctx, "POST", "/api/v1/webhooks/before-send", map[string]any{"timeout_ms": 99999}, nil), 400, "bad_request")
	apiErr(t, blog.Do(ctx, "GET", "/api/v1/webhooks/before-send", nil, nil), 404, "not_found")
	if err := shop.DeleteWebhookEndpoint(ctx, ep.ID); err != nil {
		t.Fatal(err)
	}
	if eps, _ := shop.WebhookEndpoints(ctx); len(eps) != 0 {
		t.Fatalf("after delete: %+v", eps)
	}
}

func ptrTo[T any](v T) *T { return &v }
