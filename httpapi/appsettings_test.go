package httpapi

import (
	"context"
	"strings"
	"testing"
)

// TestAppSettings reads and sets an app's retention over the signed API:
// the answer never carries the secret, a bad value is bad_request, a
// missing one too, and one app's setting leaves the other's alone.
func TestAppSettings(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	shop, blog := h.app("shop"), h.app("blog")

	var got AppSettings
	if err := shop.Do(ctx, "GET", "/api/v1/app", nil, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != "shop" || got.RetentionDays != 0 {
		t.Fatalf("GET /api/v1/app = %+v", got)
	}
	if err := shop.Do(ctx, "POST", "/api/v1/app", map[string]int{"retention_days": 30}, &got); err != nil {
		t.Fatal(err)
	}
	if got.RetentionDays != 30 {
		t.Fatalf("after setting 30: %+v", got)
	}
	var raw map[string]any
	if err := shop.Do(ctx, "GET", "/api/v1/app", nil, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["retention_days"] != float64(30) || raw["secret"] != nil {
		t.Fatalf("GET after setting: %v", raw)
	}
	ae := apiErr(t, shop.Do(ctx, "POST", "/api/v1/app", map[string]int{"retention_days": -2}, nil), 400, "bad_request")
	if !strings.Contains(ae.Message, "retention_days") {
		t.Fatalf("message %q does not name the field", ae.Message)
	}
	apiErr(t, shop.Do(ctx, "POST", "/api/v1/app", map[string]int{}, nil), 400, "bad_request")
	if err := blog.Do(ctx, "GET", "/api/v1/app", nil, &got); err != nil || got.ID != "blog" || got.RetentionDays != 0 {
		t.Fatalf("the other app: %+v, %v", got, err)
	}
}
