package interop_test

import (
	"testing"
	"time"

	"chatd/internal/teststack"
)

// The SDK's uploads against a real chatd, from Node: sendFile with
// progress, the image message as another user receives it, the signed
// URL's bytes, a file's name, a refused type and an aborted upload. The
// checks are in node/sdk_upload.mjs.
func TestSDKUpload(t *testing.T) {
	var r struct {
		FileID  string `json:"file_id"`
		Width   int    `json:"width"`
		Refused string `json:"refused"`
		Aborted string `json:"aborted"`
	}
	runSDKScript(t, teststack.Options{}, "sdkup", []string{"alice", "bob"}, 60*time.Second, &r,
		"sdk_upload.mjs", "{ws}", "{http}", "sdkup", "{token:alice}", "{token:bob}", "bob")
	if len(r.FileID) != 64 || r.Width != 4 || r.Aborted != "aborted" {
		t.Fatalf("report %+v", r)
	}
}
