package main

import (
	"reflect"
	"testing"
	"time"

	"chatd/chat"
	"chatd/internal/config"
)

func TestConsultSettingsReachTheCore(t *testing.T) {
	got := consultConfig(&config.Config{ConsultTick: 5 * time.Second, ConsultWarnings: []string{"2m", " 30s"},
		ConsultRounding: "second", ConsultMaxPerConsultant: 3, ConsultPendingTTL: time.Hour})
	want := chat.ConsultConfig{
		ConsultClock:     chat.ConsultClock{Every: 5 * time.Second, Warnings: []time.Duration{2 * time.Minute, 30 * time.Second}},
		Rounding:         chat.RoundPerSecond,
		MaxPerConsultant: 3,
		PendingTTL:       time.Hour,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// An empty warning list means no warnings, not the defaults.
	if got := consultConfig(&config.Config{ConsultRounding: "minute"}); got.Warnings == nil || len(got.Warnings) != 0 || got.Rounding != chat.RoundPerMinute {
		t.Fatalf("empty list: %+v", got)
	}
}
