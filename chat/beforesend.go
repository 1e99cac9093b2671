package chat

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// The before-send hook (docs/webhooks.md, "Before-send hook"): an app may
// have every message checked by its own server before it is stored — a
// synchronous signed POST that answers allow, reject or rewrite, within a
// strict timeout, with a fallback (allow or reject) when it does not. Off
// unless the app sets one; an app without one pays one atomic load per
// send. With one, sends leave the event loop's fast path (the call
// blocks the sender's own queue, never an event loop or the journal).

// BeforeSendHook is an app's before-send hook.
type BeforeSendHook struct {
	App       string `json:"app"`
	URL       string `json:"url"`
	Secret    string `json:"secret"`
	TimeoutMS int    `json:"timeout_ms"` // 10–5000
	OnTimeout string `json:"on_timeout"` // "allow" or "reject": also on errors and bad answers
	Enabled   bool   `json:"enabled"`
	UpdatedAt int64  `json:"updated_at"`
}

// BeforeSendHookInput sets an app's hook; nil fields keep their values
// (a new hook: timeout 300 ms, on_timeout allow, enabled, a generated
// secret).
type BeforeSendHookInput struct {
	URL       *string `json:"url"`
	Secret    *string `json:"secret"`
	TimeoutMS *int    `json:"timeout_ms"`
	OnTimeout *string `json:"on_timeout"`
	Enabled   *bool   `json:"enabled"`
}

// WebhookBeforeSend is the before-send hook's event type (X-Chatd-Event).
const WebhookBeforeSend = "message.before_send"

const kindBeforeSendHook = "wh.hook" // app → BeforeSendHook (JSON)

// BeforeSendHook returns app's hook, or not_found.
func (c *Core) BeforeSendHook(ctx context.Context, app string) (BeforeSendHook, error) {
	if _, err := c.App(ctx, app); err != nil {
		return BeforeSendHook{}, err
	}
	if h := c.wh.hookOf(app); h != nil {
		return *h, nil
	}
	return BeforeSendHook{}, Errf(CodeNotFound, "app "+app+" has no before-send hook")
}

// SetBeforeSendHook creates or changes app's hook.
func (c *Core) SetBeforeSendHook(ctx context.Context, app string, in BeforeSendHookInput) (BeforeSendHook, error) {
	if _, err := c.App(ctx, app); err != nil {
		return BeforeSendHook{}, err
	}
	c.wh.writeMu.Lock()
	defer c.wh.writeMu.Unlock()
	h := BeforeSendHook{App: app, TimeoutMS: 300, OnTimeout: "allow", Enabled: true}
	if old := c.wh.hookOf(app); old != nil {
		h = *old
	} else if in.URL == nil {
		return BeforeSendHook{}, Errf(CodeBadRequest, "missing url")
	}
	if in.URL != nil {
		if err := c.checkWebhookURL(*in.URL); err != nil {
			return BeforeSendHook{}, err
		}
		h.URL = *in.URL
	}
	if in.TimeoutMS != nil {
		if *in.TimeoutMS < 10 || *in.TimeoutMS > 5000 {
			return BeforeSendHook{}, Errf(CodeBadRequest, "timeout_ms must be 10-5000: the sender waits this long")
		}
		h.TimeoutMS = *in.TimeoutMS
	}
	if in.OnTimeout != nil {
		if *in.OnTimeout != "allow" && *in.OnTimeout != "reject" {
			return BeforeSendHook{}, Errf(CodeBadRequest, "on_timeout must be allow or reject")
		}
		h.OnTimeout = *in.OnTimeout
	}
	if in.Secret != nil {
		if s := *in.Secret; s != "" && (len(s) < 16 || len(s) > 256) {
			return BeforeSendHook{}, Errf(CodeBadRequest, "secret must be 16-256 bytes (or empty to generate one)")
		}
		h.Secret = *in.Secret
	}
	if h.Secret == "" {
		h.Secret = "whsec_" + newSecret()
	}
	if in.Enabled != nil {
		h.Enabled = *in.Enabled
	}
	h.UpdatedAt = c.nowMS()
	v, err := json.Marshal(&h)
	if err != nil {
		return BeforeSendHook{}, err
	}
	if err := c.write(ctx, &Batch{Records: []Record{{Kind: kindBeforeSendHook, Key: []byte(app), Value: v}}}); err != nil {
		return BeforeSendHook{}, err
	}
	c.wh.setHook(&h)
	return h, nil
}

// hookOf returns app's hook (shared, read-only), nil when none.
func (w *webhooks) hookOf(app string) *BeforeSendHook {
	p := w.hooks.Load()
	if p == nil {
		return nil
	}
	return (*p)[app]
}

// activeHook is hookOf for the send path: nil unless enabled.
func (w *webhooks) activeHook(app string) *BeforeSendHook {
	if w.hooks.Load() == nil {
		return nil
	}
	if h := w.hookOf(app); h != nil && h.Enabled {
		return h
	}
	return nil
}

// setHook publishes a new hook table with h. Called with writeMu held (or
// at startup).
func (w *webhooks) setHook(h *BeforeSendHook) {
	m := map[string]*BeforeSendHook{}
	if p := w.hooks.Load(); p != nil {
		for k, v := range *p {
			m[k] = v
		}
	}
	cp := *h
	m[h.App] = &cp
	w.hooks.Store(&m)
}

func (c *Core) loadHooks(ctx context.Context) error {
	recs, err := c.store.ScanRecords(ctx, kindBeforeSendHook, nil, nil, 0, false)
	if err != nil {
		return err
	}
	for _, r := range recs {
		var h BeforeSendHook
		if err := json.Unmarshal(r.Value, &h); err != nil {
			return errors.New("chat: before-send hook of " + strconv.Quote(string(r.Key)) + ": " + err.Error())
		}
		c.wh.setHook(&h)
	}
	return nil
}

// hookAnswer is what the hook's server answers.
type hookAnswer struct {
	Action  string          `json:"action"` // allow, reject, rewrite
	Reason  string          `json:"reason"`
	Content json.RawMessage `json:"content"`
}

// beforeSend calls h for the send in (to session sid) and applies its
// answer: nil to go on (in.Content may have been rewritten), or the error
// the sender gets. It blocks up to h's timeout.
func (c *Core) beforeSend(ctx context.Context, h *BeforeSendHook, app string, in *SendInput, sid SessionID) error {
	w := c.wh
	start := time.Now()
	defer func() { w.hookLatency.Observe(uint64(time.Since(start))) }()
	w.hookCalls.Add(1)
	fallback := func(why string) error {
		w.hookFallbacks.Add(1)
		if h.OnTimeout == "reject" {
			return Errf(CodeUnavailable, "the app's message filter "+why+"; the message was not sent, retry later")
		}
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, time.Duration(h.TimeoutMS)*time.Millisecond)
	defer cancel()
	sp := w.sender.Load()
	if sp == nil { // starting: RunWebhooks has not given the sender yet
		select {
		case <-w.senderSet:
			sp = w.sender.Load()
		case <-cctx.Done():
			return fallback("is not reachable (webhooks are not running)")
		}
	}
	id := "bs-" + strconv.FormatInt(w.nextID(), 10)
	body, err := json.Marshal(struct {
		ID        string    `json:"id"`
		Type      string    `json:"type"`
		App       string    `json:"app"`
		CreatedAt int64     `json:"created_at"`
		Data      SendInput `json:"data"`
	}{id, WebhookBeforeSend, app, c.nowMS(), SendInput{From: in.From, To: in.To, Session: sid, Type: in.Type, Content: in.Content, CID: in.CID}})
	if err != nil {
		return err
	}
	ts := time.Now().Unix()
	status, resp, err := (*sp).Call(cctx, h.URL, WebhookHeaders{DeliveryID: id, Event: WebhookBeforeSend, Timestamp: ts,
		Signature: SignWebhook(h.Secret, ts, body)}, body)
	switch {
	case err != nil && cctx.Err() != nil:
		return fallback("did not answer within " + strconv.Itoa(h.TimeoutMS) + " ms")
	case err != nil:
		return fallback("failed (" + clip(err.Error(), 120) + ")")
	case status < 200 || status > 299:
		return fallback("answered HTTP " + strconv.Itoa(status))
	}
	var a hookAnswer
	if json.Unmarshal(resp, &a) != nil {
		return fallback("answered something other than JSON")
	}
	switch a.Action {
	case "allow", "":
		return nil
	case "reject":
		w.hookRejected.Add(1)
		msg := "the app's message filter rejected this message"
		if a.Reason != "" {
			msg += ": " + clip(a.Reason, 200)
		}
		return Errf(CodeForbidden, msg)
	case "rewrite":
		if _, e := validateContent(in.Type, a.Content, c.cfg.MaxContent); e != nil {
			return fallback("rewrote the message into invalid content (" + e.Message + ")")
		}
		w.hookRewritten.Add(1)
		in.Content = a.Content
		return nil
	}
	return fallback("answered an unknown action " + strconv.Quote(clip(a.Action, 32)))
}
