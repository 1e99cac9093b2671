package httpapi

import (
	"strconv"

	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// Webhook endpoints and deliveries over the signed server API
// (docs/webhooks.md, "Managing endpoints").

// WebhookEndpointRequest is the body of POST /api/v1/webhooks (create:
// url and events needed) and POST /api/v1/webhooks/update (id needed;
// absent fields keep their values). An empty secret is generated.
type WebhookEndpointRequest struct {
	ID string `json:"id,omitempty"`
	chat.WebhookEndpointInput
}

// WebhookDeleteRequest is the body of POST /api/v1/webhooks/delete.
type WebhookDeleteRequest struct {
	ID string `json:"id"`
}

// RedeliverRequest is the body of POST /api/v1/webhooks/redeliver: the
// deliveries named by DeliveryIDs, or those of the events FromEvent to
// ToEvent (inclusive), optionally only Endpoint's and only failed ones.
type RedeliverRequest struct {
	DeliveryIDs []string `json:"delivery_ids,omitempty"`
	FromEvent   string   `json:"from_event,omitempty"`
	ToEvent     string   `json:"to_event,omitempty"`
	Endpoint    string   `json:"endpoint,omitempty"`
	FailedOnly  bool     `json:"failed_only,omitempty"`
}

// RedeliverReply says how many deliveries were queued again.
type RedeliverReply struct {
	Queued int `json:"queued"`
}

// WebhookDeliveriesReply is the answer of GET /api/v1/webhooks/deliveries.
type WebhookDeliveriesReply struct {
	Deliveries []chat.WebhookDelivery `json:"deliveries"`
}

func (s *Server) appWebhooks(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	eps, err := s.core.WebhookEndpoints(s.reqCtx, r.app)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, eps)
	return nil
}

func (s *Server) appCreateWebhook(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in WebhookEndpointRequest
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	ep, err := s.core.CreateWebhookEndpoint(s.reqCtx, r.app, in.WebhookEndpointInput)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, ep)
	return nil
}

func (s *Server) appUpdateWebhook(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in WebhookEndpointRequest
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	if in.ID == "" {
		return missing("id")
	}
	ep, err := s.core.UpdateWebhookEndpoint(s.reqCtx, r.app, in.ID, in.WebhookEndpointInput)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, ep)
	return nil
}

func (s *Server) appDeleteWebhook(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in WebhookDeleteRequest
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	if in.ID == "" {
		return missing("id")
	}
	if err := s.core.DeleteWebhookEndpoint(s.reqCtx, r.app, in.ID); err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, struct{}{})
	return nil
}

func (s *Server) appWebhookDeliveries(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	args := ctx.QueryArgs()
	limit := 0
	if b := args.Peek("limit"); len(b) > 0 {
		n, err := strconv.Atoi(string(b))
		if err != nil || n < 0 {
			return chat.Errf(chat.CodeBadRequest, "bad query parameter \"limit\": want a non-negative integer")
		}
		limit = n
	}
	ds, err := s.core.WebhookDeliveries(s.reqCtx, r.app, limit, string(args.Peek("before")), string(args.Peek("status")))
	if err != nil {
		return err
	}
	if args.Has("with_body") {
		s.writeData(ctx, fasthttp.StatusOK, WebhookDeliveriesReply{Deliveries: ds})
		return nil
	}
	for i := range ds {
		ds[i].Body = nil
	}
	s.writeData(ctx, fasthttp.StatusOK, WebhookDeliveriesReply{Deliveries: ds})
	return nil
}

func (s *Server) appRedeliver(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in RedeliverRequest
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	var from, to uint64
	if in.FromEvent != "" || in.ToEvent != "" {
		var err1, err2 error
		from, err1 = strconv.ParseUint(in.FromEvent, 10, 64)
		to, err2 = strconv.ParseUint(in.ToEvent, 10, 64)
		if in.ToEvent == "" {
			to, err2 = from, nil
		}
		if err1 != nil || err2 != nil || from == 0 {
			return chat.Errf(chat.CodeBadRequest, "from_event and to_event are event ids (the event_id of a delivery)")
		}
	}
	n, err := s.core.RedeliverWebhooks(s.reqCtx, r.app, in.DeliveryIDs, from, to, in.Endpoint, in.FailedOnly)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, RedeliverReply{Queued: n})
	return nil
}

func (s *Server) appBeforeSend(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	h, err := s.core.BeforeSendHook(s.reqCtx, r.app)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, h)
	return nil
}

func (s *Server) appSetBeforeSend(ctx *fasthttp.RequestCtx, r *reqInfo) error {
	var in chat.BeforeSendHookInput
	if e := decodeJSON(ctx.PostBody(), &in, false); e != nil {
		return e
	}
	h, err := s.core.SetBeforeSendHook(s.reqCtx, r.app, in)
	if err != nil {
		return err
	}
	s.writeData(ctx, fasthttp.StatusOK, h)
	return nil
}
