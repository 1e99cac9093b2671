package interop_test

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatd/internal/teststack"
)

// The SDK's uploads against a real chatd, from Node: sendFile with
// progress, the image message as another user receives it, the signed
// URL's bytes, a file's name, a refused type and an aborted upload. The
// checks are in node/sdk_upload.mjs.
func TestSDKUpload(t *testing.T) {
	node := needNode(t)
	bundle := buildSDK(t, node)
	log := zerolog.New(os.Stderr).Level(zerolog.WarnLevel)
	s := &chatd{teststack.Start(t, t.TempDir(), teststack.Options{Log: log})}
	tok := s.tokens(t, "sdkup", "alice", "bob")
	out := runNode(t, node, 60*time.Second, "sdk_upload.mjs", bundle, "ws://"+s.WSAddr+"/", "http://"+s.HTTPAddr,
		"sdkup", tok[0], tok[1], "bob")
	var r struct {
		FileID  string `json:"file_id"`
		Width   int    `json:"width"`
		Refused string `json:"refused"`
		Aborted string `json:"aborted"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		t.Fatalf("sdk script output %q: %v", out, err)
	}
	t.Logf("report %+v", r)
	if len(r.FileID) != 64 || r.Width != 4 || r.Aborted != "aborted" {
		t.Fatalf("report %+v", r)
	}
}
