package reactor

import "github.com/rs/zerolog"

// gnetLogger routes gnet's own log lines to zerolog. gnet's Info lines are
// start-up chatter and go to Debug; its warnings and errors keep their level.
// gnet only logs at the edges (start, stop, accept and poller failures), so
// the fmt formatting here never runs per message.
type gnetLogger struct{ log zerolog.Logger }

func (g gnetLogger) Debugf(format string, args ...any) {
	if e := g.log.Debug(); e.Enabled() {
		e.Str("from", "gnet").Msgf(format, args...)
	}
}

func (g gnetLogger) Infof(format string, args ...any) { g.Debugf(format, args...) }

func (g gnetLogger) Warnf(format string, args ...any) {
	g.log.Warn().Str("from", "gnet").Msgf(format, args...)
}

func (g gnetLogger) Errorf(format string, args ...any) {
	g.log.Error().Str("from", "gnet").Msgf(format, args...)
}

// Fatalf logs at error level; gnet never calls it from a running engine and
// the reactor must not exit the process.
func (g gnetLogger) Fatalf(format string, args ...any) { g.Errorf(format, args...) }
