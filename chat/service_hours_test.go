package chat

import (
	"testing"
	"time"
)

func TestBusinessHoursTable(t *testing.T) {
	weekdays9to17 := func(zone string) BusinessHours {
		h := BusinessHours{Zone: zone}
		for _, d := range []string{"mon", "tue", "wed", "thu", "fri"} {
			h.Weekly = append(h.Weekly, HoursRange{Day: d, Open: "09:00", Close: "17:00"})
		}
		return h
	}
	berlin := weekdays9to17("Europe/Berlin")
	berlin.Exceptions = []HoursException{
		{Date: "2026-12-24", Closed: true},
		{Date: "2026-12-31", Ranges: []HoursRange{{Open: "10:00", Close: "14:00"}}},
	}
	night := BusinessHours{Zone: "Asia/Tokyo", Weekly: []HoursRange{{Day: "fri", Open: "22:00", Close: "02:00"}}}
	allDay := BusinessHours{Zone: "Australia/Sydney", Weekly: []HoursRange{{Day: "sun", Open: "00:00", Close: "00:00"}}}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name string
		h    BusinessHours
		at   string
		open bool
	}{
		{"new york before DST, 09:30 EST", weekdays9to17("America/New_York"), "2026-03-02T14:30:00Z", true},
		{"new york before DST, 08:30 EST", weekdays9to17("America/New_York"), "2026-03-02T13:30:00Z", false},
		// After the change (2026-03-08) the same UTC instant is 09:30 EDT: open.
		{"new york after DST, 09:30 EDT", weekdays9to17("America/New_York"), "2026-03-09T13:30:00Z", true},
		{"new york after DST, 17:30 EDT", weekdays9to17("America/New_York"), "2026-03-09T21:30:00Z", false},
		{"berlin thursday 10:00", berlin, "2026-12-17T09:00:00Z", true},
		{"berlin christmas eve (exception: closed)", berlin, "2026-12-24T09:00:00Z", false},
		{"berlin new year's eve 13:00 (exception: 10–14)", berlin, "2026-12-31T12:00:00Z", true},
		{"berlin new year's eve 15:00 (exception: 10–14)", berlin, "2026-12-31T14:00:00Z", false},
		{"berlin saturday", berlin, "2026-12-19T10:00:00Z", false},
		{"tokyo friday 23:00 (crossing midnight)", night, "2026-03-06T14:00:00Z", true},
		{"tokyo saturday 01:00 (friday's range)", night, "2026-03-06T16:00:00Z", true},
		{"tokyo saturday 02:30", night, "2026-03-06T17:30:00Z", false},
		{"tokyo friday 21:00", night, "2026-03-06T12:00:00Z", false},
		{"sydney sunday all day, 00:10", allDay, "2026-03-07T13:10:00Z", true},
		{"sydney monday 00:10", allDay, "2026-03-08T13:10:00Z", false},
		// Sydney leaves DST on 2026-04-05 at 03:00 → 02:00: Sunday still lasts to midnight.
		{"sydney DST end sunday 23:30", allDay, "2026-04-05T13:30:00Z", true},
	}
	for _, tc := range cases {
		p, err := compileHours(&tc.h)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := p.open(utc(tc.at)); got != tc.open {
			t.Errorf("%s: open = %v, want %v (local %s)", tc.name, got, tc.open, utc(tc.at).In(p.loc))
		}
	}
}

func TestBusinessHoursInvalid(t *testing.T) {
	for name, h := range map[string]BusinessHours{
		"no zone":       {Weekly: []HoursRange{{Day: "mon", Open: "09:00", Close: "17:00"}}},
		"unknown zone":  {Zone: "Mars/Olympus"},
		"bad day":       {Zone: "UTC", Weekly: []HoursRange{{Day: "someday", Open: "09:00", Close: "17:00"}}},
		"bad time":      {Zone: "UTC", Weekly: []HoursRange{{Day: "mon", Open: "9am", Close: "17:00"}}},
		"25 o'clock":    {Zone: "UTC", Weekly: []HoursRange{{Day: "mon", Open: "09:00", Close: "25:00"}}},
		"bad date":      {Zone: "UTC", Exceptions: []HoursException{{Date: "24.12.2026", Closed: true}}},
		"closed+ranges": {Zone: "UTC", Exceptions: []HoursException{{Date: "2026-12-24", Closed: true, Ranges: []HoursRange{{Open: "09:00", Close: "10:00"}}}}},
	} {
		_, err := compileHours(&h)
		if e, ok := err.(*Error); !ok || e.Code != CodeBadRequest {
			t.Errorf("%s: err %v, want bad_request", name, err)
		}
	}
}
