package proxy

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"image-proxy/events"
	"image-proxy/fault"
	"image-proxy/metrics"
)

// eventsBodyBytes bounds a notification: MinIO sends one record per
// request, S3 a few, EventBridge at most 256 KB.
const eventsBodyBytes = 1 << 20

// EventReceiver takes S3 event notifications (events.Receiver).
type EventReceiver interface {
	Receive(body []byte) (events.Summary, error)
}

// UseEvents serves POST /events/s3 through r (with IMAGE_PROXY_EVENTS_TOKEN
// set). main calls it before the server listens: the receiver's warm work
// renders through this server, so it is built after it.
func (s *Server) UseEvents(r EventReceiver) { s.events = r }

// handleEvents answers POST /events/s3: 200 once the events are queued (or
// known, or ignored), 503 when the queue is full so the sender retries,
// 400 for a body that is no notification.
func (s *Server) handleEvents(c *fiber.Ctx) error {
	return s.handlePost(c, metrics.KindEvents, s.receiveEvents)
}

func (s *Server) receiveEvents(c *fiber.Ctx) error {
	token := s.cfg.Hooks.EventsToken
	if token == "" || s.events == nil {
		return fault.New(fault.NotFound, "POST /events/s3 is not enabled on this server.", nil)
	}
	if !bearerMatches(c.Get(fiber.HeaderAuthorization), token) {
		return fault.New(fault.Unauthorized, "", nil)
	}
	body, err := readCapped(c, eventsBodyBytes)
	if err != nil {
		return err
	}
	sum, err := s.events.Receive(body)
	switch {
	case errors.Is(err, events.ErrFull):
		return fault.New(fault.Overloaded, "The event queue is full; retry shortly.", err)
	case err != nil:
		return fault.New(fault.BadRequest, err.Error(), err)
	}
	out, _ := marshalLine(sum)
	c.Response().Header.Set(fiber.HeaderCacheControl, "no-store")
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	c.Response().SetBodyRaw(out)
	return nil
}
