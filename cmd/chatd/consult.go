package main

import (
	"strings"
	"time"

	"chatd/chat"
	"chatd/internal/config"
)

// consultConfig turns the consult_* settings into the core's
// consultation config. The settings were checked when loaded.
func consultConfig(cfg *config.Config) chat.ConsultConfig {
	cc := chat.ConsultConfig{
		ConsultClock:     chat.ConsultClock{Every: cfg.ConsultTick, Warnings: []time.Duration{}},
		Rounding:         chat.RoundPerMinute,
		MaxPerConsultant: cfg.ConsultMaxPerConsultant,
		PendingTTL:       cfg.ConsultPendingTTL,
	}
	if cfg.ConsultRounding == "second" {
		cc.Rounding = chat.RoundPerSecond
	}
	for _, w := range cfg.ConsultWarnings {
		if d, err := time.ParseDuration(strings.TrimSpace(w)); err == nil && d > 0 {
			cc.Warnings = append(cc.Warnings, d)
		}
	}
	return cc
}
