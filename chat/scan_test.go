package chat

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

var requestSeeds = []string{
	`{"id":"1","action":"login","app":"shop","token":"abc"}`,
	`{"id":7,"action":"send","session_id":42,"type":"text","content":{"text":"hi \u00e9 \"q\""},"cid":"c-1"}`,
	`{"action":"send","to":"bob","type":"image","content":{"url":"http://x/y.png","width":10}}`,
	` { "id" : "x" , "action" : "history" , "session_id" : 1 , "before" : 10 , "limit" : -5 } `,
	`{"action":"group_create","name":"g","uids":["a","b",null,"\u0063"]}`,
	`{"action":"send","uids":null,"id":null,"content":null}`,
	`{"Action":"send"}`,
	`{"action":"x","ſession_id":5}`,
	`{"action":"x","session_id":"5"}`,
	`{"action":"x","session_id":1.5}`,
	`{"action":"x","session_id":-1}`,
	`{"action":"x","limit":1e3}`,
	`{"action":"x","uids":[1]}`,
	`{"action":"x","extra":{"a":[1,2,{"b":null}],"c":true}}`,
	`{"action":"x"}` + "\x00",
	`{"action":"\xff"}`,
	`{"action":"x","id":[1]}`,
	`{"action":"a","action":"b"}`,
	`[1]`, `"x"`, `{`, `{"action":}`, `{"action":"x",}`, `{"a" "b"}`, `{}`, ``,
	`{"action":"x","n":01}`, `{"action":"x","n":-}`, `{"action":"x","s":"\x01"}`, `{"action":"x","s":"\q"}`,
}

// FuzzDecodeRequest holds the scanner to encoding/json's verdicts: when the
// fast path decides, it must agree with encoding/json exactly.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast request
		fe, ok := decodeFast(b, &fast)
		if !ok {
			return // deferred to encoding/json
		}
		var slow request
		err := json.Unmarshal(b, &slow)
		if fe != nil {
			if err == nil {
				t.Fatalf("scanner: field %s must be %s; encoding/json accepted %q", fe.field, fe.want, b)
			}
			return
		}
		if err != nil {
			t.Fatalf("scanner accepted %q; encoding/json: %v", b, err)
		}
		// RawMessage fields: same bytes. Everything else: equal.
		if !bytes.Equal(fast.ID, slow.ID) || !bytes.Equal(fast.Content, slow.Content) {
			t.Fatalf("%q: raw fields differ: id %q/%q content %q/%q", b, fast.ID, slow.ID, fast.Content, slow.Content)
		}
		fast.ID, slow.ID, fast.Content, slow.Content = nil, nil, nil, nil
		if len(fast.UIDs) == 0 && len(slow.UIDs) == 0 && (fast.UIDs == nil) != (slow.UIDs == nil) {
			t.Fatalf("%q: uids nil-ness differs: %#v vs %#v", b, fast.UIDs, slow.UIDs)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nscanner       %#v\nencoding/json %#v", b, fast, slow)
		}
	})
}

func TestDecodeRequestSeedsAgree(t *testing.T) {
	decided := 0
	for _, s := range requestSeeds {
		var r request
		if _, ok := decodeFast([]byte(s), &r); ok {
			decided++
		}
	}
	if decided < len(requestSeeds)/3 {
		t.Fatalf("scanner decided only %d of %d seeds itself", decided, len(requestSeeds))
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{name: "truncated", in: `{"id":"1","action":`, want: "bad JSON at byte"},
		{name: "string for number", in: `{"action":"send","session_id":"x"}`, want: `field "session_id" must be uint64`},
		{name: "number for string", in: `{"action":5}`, want: `field "action" must be string`},
		{name: "fraction", in: `{"action":"x","limit":1.5}`, want: `field "limit" must be int`},
		{name: "object id", in: `{"id":{},"action":"x"}`, want: "id must be a string or a number"},
		{name: "no action", in: `{"id":"1"}`, want: "missing action"},
		{name: "trailing garbage", in: `{"action":"x"} y`, want: "bad JSON"},
		{name: "case-insensitive key via encoding/json", in: `{"ACTION":"ping"}`, want: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r request
			e := decodeRequest([]byte(tc.in), &r)
			if tc.want == "" {
				if e != nil || r.Action != "ping" {
					t.Fatalf("got %v, action %q", e, r.Action)
				}
				return
			}
			if e == nil || e.Code != CodeBadRequest || !strings.Contains(e.Message, tc.want) {
				t.Fatalf("got %v, want bad_request containing %q", e, tc.want)
			}
		})
	}
}

func TestValidateContent(t *testing.T) {
	cases := []struct {
		name, typ, content, errPart, preview string
	}{
		{name: "text", typ: "text", content: `{"text":"  hello   world "}`, preview: "hello world"},
		{name: "text escaped", typ: "text", content: `{"text":"caf\u00e9"}`, preview: "café"},
		{name: "empty text", typ: "text", content: `{"text":""}`, errPart: `non-empty "text"`},
		{name: "text not a string", typ: "text", content: `{"text":5}`, errPart: "must be strings"},
		{name: "not an object", typ: "text", content: `"hi"`, errPart: "JSON object"},
		{name: "image", typ: "image", content: `{"url":"https://x/u","width":3}`, preview: "[image]"},
		{name: "voice without duration", typ: "voice", content: `{"url":"http://x/u"}`, errPart: `"duration"`},
		{name: "file", typ: "file", content: `{"url":"HTTPS://x/u","name":"report.pdf"}`, preview: "[file] report.pdf"},
		{name: "rich blocks", typ: "rich", content: `{"blocks":[]}`, preview: "[rich]"},
		{name: "rich empty", typ: "rich", content: `{"html":""}`, errPart: `"html" or "blocks"`},
		{name: "card", typ: "card", content: `{"title":"Sale"}`, preview: "[card] Sale"},
		{name: "location", typ: "location", content: `{"lat":48.8,"lng":2.35}`, preview: "[location]"},
		{name: "location off the map", typ: "location", content: `{"lat":91,"lng":0}`, errPart: "lat"},
		{name: "custom", typ: "custom", content: `{"anything":[1,{"x":null}]}`, preview: "[custom]"},
		{name: "javascript url", typ: "image", content: `{"url":"javascript:alert(1)"}`, errPart: `"content.url" must be an http`},
		{name: "escaped javascript url", typ: "file", content: `{"url":"java\u0073cript:alert(1)","name":"a"}`, errPart: `"content.url" must be`},
		{name: "data url", typ: "image", content: `{"url":"data:text/html,<script>"}`, errPart: `"content.url" must be`},
		{name: "vbscript cover", typ: "video", content: `{"url":"http://x/v","cover":"vbscript:x"}`, errPart: `"content.cover"`},
		{name: "file url card image", typ: "card", content: `{"title":"t","image":"file:///etc/passwd"}`, errPart: `"content.image"`},
		{name: "duplicate url key", typ: "image", content: `{"url":"http://x/a","url":"javascript:x"}`, errPart: `"content.url"`},
		{name: "url without host", typ: "image", content: `{"url":"https:javascript:x"}`, errPart: `with a host`},
		{name: "relative url", typ: "image", content: `{"url":"/files/1.png"}`, errPart: `"content.url"`},
		{name: "url in custom", typ: "custom", content: `{"url":"javascript:x"}`, errPart: `"content.url"`},
		{name: "cover not a string", typ: "video", content: `{"url":"http://x/v","cover":{}}`, errPart: "must be strings"},
		{name: "invalid utf-8", typ: "text", content: "{\"text\":\"a\xffb\"}", errPart: "not valid UTF-8"},
		{name: "invalid utf-8 in custom", typ: "custom", content: "{\"k\":[\"\xc3\"]}", errPart: "not valid UTF-8"},
		{name: "lone high surrogate", typ: "text", content: `{"text":"a\ud800b"}`, errPart: "lone UTF-16 surrogate"},
		{name: "lone low surrogate", typ: "custom", content: `{"x":"\uDC00"}`, errPart: "lone UTF-16 surrogate"},
		{name: "high surrogate at the end", typ: "custom", content: `{"x":"\ud83d"}`, errPart: "lone UTF-16 surrogate"},
		{name: "surrogate pair", typ: "text", content: `{"text":"\ud83d\ude00 \\ud800"}`, preview: "😀 \\ud800"},
		{name: "unknown type", typ: "hologram", content: `{}`, errPart: "unknown message type"},
		{name: "too large", typ: "text", content: `{"text":"` + strings.Repeat("x", 100) + `"}`, errPart: "limit is 64"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, e := validateContent(tc.typ, json.RawMessage(tc.content), 64)
			if tc.name != "too large" && len(tc.content) > 64 {
				t.Fatal("case content over the test limit")
			}
			if tc.errPart != "" {
				if e == nil || !strings.Contains(e.Message, tc.errPart) {
					t.Fatalf("got %v, want error containing %q", e, tc.errPart)
				}
				return
			}
			if e != nil || p != tc.preview {
				t.Fatalf("got %q, %v; want preview %q", p, e, tc.preview)
			}
		})
	}
}
