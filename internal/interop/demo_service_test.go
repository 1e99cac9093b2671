package interop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatd/chat"
	"chatd/internal/demo"
	"chatd/internal/teststack"
)

// hostService runs a host customer-service action of the demo app and
// decodes its data into out.
func hostService(t *testing.T, core *chat.Core, req string, out any) {
	t.Helper()
	v, err := core.ServiceHost(context.Background(), demo.App, []byte(req))
	if err != nil {
		t.Fatalf("%s: %v", req, err)
	}
	b, _ := json.Marshal(v)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %s: %v", req, b, err)
	}
}

// A real Chromium runs the customer-service demo end to end on chatd's own
// pages: a customer on /demo/shop.html opens the widget and writes, is
// queued and sees her position and the offline auto-reply; the agent in
// /demo/console.html claims her; they chat both ways (a canned reply, a
// private note the customer never sees); the agent resolves and the
// customer rates. Then kim comes online, the customer writes again and is
// routed to him, and he transfers her to sam with a note. The DOM of the
// pages is checked by the script, and the server's state here: the
// conversation, its messages, the note, the rating.
func TestDemoServicePages(t *testing.T) {
	node := needNode(t)
	if _, err := os.Stat(chromiumPath); err != nil {
		missing(t, chromiumPath+" is not installed")
	}
	c := &chatd{teststack.Start(t, t.TempDir(), teststack.Options{Demo: true,
		Log: zerolog.New(os.Stderr).Level(zerolog.WarnLevel)})}
	base := "http://" + c.HTTPAddr + "/demo/"

	// Set the demo up as the pages would, then take kim off duty: with sam
	// away too (the script does that in the console), the customer waits.
	resp, err := http.Post(base+"api/setup", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("setup: %s", resp.Status)
	}
	var kim map[string]any
	hostService(t, c.Core, `{"action":"agent_put","shop":"acme","uid":"kim","status":"offline"}`, &kim)

	shots := artifactsDir(t)
	out := runNode(t, node, 170*time.Second, "demo_service.mjs", base, shots)
	var r struct {
		Browser                               string
		QueuedText, OfflineText, QueueText    string
		AssignedText, WelcomeText, CannedText string
		RatedText, RatedLogText               string
		RoutedText, TransferLog               string
		WidgetShowsNote                       bool
		Screenshots                           int
		WidgetMessages                        []struct {
			Seq              int
			Role, Auto, Text string
		}
		ConsoleItems []struct {
			Note       bool
			Role, Text string
		}
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		t.Fatalf("browser script output %q: %v", out, err)
	}
	t.Logf("Chromium %s: %d screenshots in %s", r.Browser, r.Screenshots, shots)

	// What the pages showed.
	if r.QueuedText != "You are number 1 in the queue" {
		t.Errorf("widget status while queued: %q", r.QueuedText)
	}
	if !strings.Contains(r.OfflineText, "All our agents are busy") {
		t.Errorf("offline auto-reply: %q", r.OfflineText)
	}
	if !strings.Contains(r.QueueText, "#1") || !strings.Contains(r.QueueText, "Carol") {
		t.Errorf("console queue entry: %q", r.QueueText)
	}
	if r.AssignedText != "Sam (ACME) is helping you" {
		t.Errorf("widget status once assigned: %q", r.AssignedText)
	}
	if !strings.Contains(r.WelcomeText, "This is the ACME demo shop") {
		t.Errorf("welcome auto-reply: %q", r.WelcomeText)
	}
	if r.CannedText != demo.Canned[1][1] {
		t.Errorf("the canned reply /refund filled in %q, want %q", r.CannedText, demo.Canned[1][1])
	}
	if !strings.Contains(r.RatedText, "5 of 5") || !strings.Contains(r.RatedLogText, "carol rated sam 5 of 5") {
		t.Errorf("after rating: widget %q, console log %q", r.RatedText, r.RatedLogText)
	}
	if r.WidgetShowsNote {
		t.Errorf("the widget shows an agents' note (private or the transfer's)")
	}
	if r.RoutedText != "Kim (ACME) is helping you" {
		t.Errorf("widget status after writing again with kim online: %q", r.RoutedText)
	}
	if !strings.Contains(r.TransferLog, "kim handed carol to sam: “wants blue, check stock”") {
		t.Errorf("sam's activity log after the transfer: %q", r.TransferLog)
	}
	var roles []string
	for _, m := range r.WidgetMessages {
		roles = append(roles, m.Role+"/"+m.Auto+":"+m.Text)
	}
	want := []string{
		"shop/offline:" + r.OfflineText,
		"customer/:Hello, where is my order 1234?",
		"agent/welcome:" + r.WelcomeText,
		"agent/:" + r.CannedText,
		"customer/:Great, thank you!",
		// carol writes again: reopened, routed to kim, transferred to sam
		"agent/welcome:" + r.WelcomeText,
		"customer/:One more thing: can I change the colour?",
		"agent/welcome:" + r.WelcomeText,
		"agent/:Blue is in stock, I will change it.",
	}
	if strings.Join(roles, "\n") != strings.Join(want, "\n") {
		t.Errorf("widget messages:\n%s\nwant:\n%s", strings.Join(roles, "\n"), strings.Join(want, "\n"))
	}
	notes := 0
	for _, it := range r.ConsoleItems {
		if it.Note {
			notes++
		}
	}
	if notes != 1 || len(r.ConsoleItems) != len(want)+1 {
		t.Errorf("console conversation: %+v", r.ConsoleItems)
	}

	// What the server holds.
	var convs []chat.ServiceView
	hostService(t, c.Core, `{"action":"conversations","shop":"acme"}`, &convs)
	if len(convs) != 1 || convs[0].Customer != "carol" || convs[0].Status != chat.ServiceOpen || convs[0].Agent != "sam" || convs[0].RatedAt != convs[0].ResolvedAt {
		t.Fatalf("conversations: %+v", convs)
	}
	sid := convs[0].Session
	var ratings struct {
		Shop struct {
			Count   int
			Average float64
		} `json:"shop"`
		Ratings []chat.ServiceRating `json:"ratings"`
	}
	hostService(t, c.Core, `{"action":"ratings","shop":"acme"}`, &ratings)
	if len(ratings.Ratings) != 1 {
		t.Fatalf("ratings: %+v", ratings)
	}
	if g := ratings.Ratings[0]; g.Score != 5 || g.Comment != "Quick and friendly" || g.Agent != "sam" || g.Customer != "carol" || g.Session != sid {
		t.Fatalf("rating: %+v", g)
	}
	var notesOnServer []chat.ServiceNote
	hostService(t, c.Core, `{"action":"notes","session_id":`+strconv.FormatUint(uint64(sid), 10)+`}`, &notesOnServer)
	if len(notesOnServer) != 1 || notesOnServer[0].Agent != "sam" || notesOnServer[0].Text != "VIP customer, be nice" {
		t.Fatalf("notes: %+v", notesOnServer)
	}
	// The messages the widget showed are the conversation's, stored, from
	// the shop (""), carol, sam and kim; none of them a note.
	msgs, _, err := c.Core.History(context.Background(), demo.App, sid, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	var stored, from []string
	for _, m := range msgs {
		var ct struct{ Text, Auto string }
		json.Unmarshal(m.Content, &ct)
		role := map[string]string{"": "shop", "carol": "customer", "sam": "agent", "kim": "agent"}[m.From]
		stored = append(stored, role+"/"+ct.Auto+":"+ct.Text)
		from = append(from, m.From)
	}
	if strings.Join(stored, "\n") != strings.Join(want, "\n") {
		t.Errorf("stored messages:\n%s\nwant:\n%s", strings.Join(stored, "\n"), strings.Join(want, "\n"))
	}
	if got := strings.Join(from, ","); got != ",carol,sam,sam,carol,kim,carol,sam,sam" {
		t.Errorf("stored messages are from %s", got)
	}
}
