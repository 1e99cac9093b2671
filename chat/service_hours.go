package chat

import (
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // the zone database inside the binary: IANA zones work on hosts without one (Windows)
)

// BusinessHours is a shop's weekly schedule in an IANA time zone, with
// dated exceptions. Times are wall-clock times in the zone, so a DST
// change moves them with the clock, as people expect.
type BusinessHours struct {
	// Zone is an IANA time zone name such as "Europe/Berlin".
	Zone string `json:"zone"`
	// Weekly lists the opening ranges by weekday. A range whose close is
	// not after its open crosses midnight into the next day ("22:00" to
	// "02:00"); "00:00" to "00:00" is the whole day.
	Weekly []HoursRange `json:"weekly"`
	// Exceptions replace the weekly ranges of one date: closed, or other
	// ranges. A range of the previous day crossing midnight still runs.
	Exceptions []HoursException `json:"exceptions,omitempty"`
}

// HoursRange is one opening range: day is mon … sun, open and close are
// "HH:MM" (close may be "24:00").
type HoursRange struct {
	Day   string `json:"day"`
	Open  string `json:"open"`
	Close string `json:"close"`
}

// HoursException replaces the schedule of one date ("2026-12-24").
type HoursException struct {
	Date   string       `json:"date"`
	Closed bool         `json:"closed,omitempty"`
	Ranges []HoursRange `json:"ranges,omitempty"` // their day is ignored
}

// hoursPlan is a checked BusinessHours, ready to evaluate.
type hoursPlan struct {
	loc    *time.Location
	weekly [7][]minuteRange         // by time.Weekday
	except map[string][]minuteRange // date → ranges (nil slice: closed)
}

type minuteRange struct{ open, close int } // minutes of the day; close <= open crosses midnight

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// compileHours checks h and returns its plan, or a bad_request naming what
// is wrong.
func compileHours(h *BusinessHours) (*hoursPlan, error) {
	if h.Zone == "" {
		return nil, Errf(CodeBadRequest, "hours.zone is missing: an IANA time zone such as \"Europe/Berlin\"")
	}
	loc, err := time.LoadLocation(h.Zone)
	if err != nil || h.Zone == "Local" {
		return nil, Errf(CodeBadRequest, "hours.zone \""+clip(h.Zone, 64)+"\" is not an IANA time zone")
	}
	if len(h.Weekly) > 70 || len(h.Exceptions) > 400 {
		return nil, Errf(CodeBadRequest, "hours: at most 70 weekly ranges and 400 exceptions")
	}
	p := &hoursPlan{loc: loc, except: make(map[string][]minuteRange)}
	for i, r := range h.Weekly {
		d, ok := weekdays[strings.ToLower(r.Day)]
		if !ok {
			return nil, Errf(CodeBadRequest, "hours.weekly["+strconv.Itoa(i)+"].day must be mon, tue, wed, thu, fri, sat or sun")
		}
		mr, err := parseRange(r, "hours.weekly["+strconv.Itoa(i)+"]")
		if err != nil {
			return nil, err
		}
		p.weekly[d] = append(p.weekly[d], mr)
	}
	for i, x := range h.Exceptions {
		where := "hours.exceptions[" + strconv.Itoa(i) + "]"
		if _, err := time.Parse("2006-01-02", x.Date); err != nil {
			return nil, Errf(CodeBadRequest, where+".date must be YYYY-MM-DD")
		}
		if x.Closed && len(x.Ranges) > 0 {
			return nil, Errf(CodeBadRequest, where+": closed or ranges, not both")
		}
		rs := []minuteRange{}
		for j, r := range x.Ranges {
			mr, err := parseRange(r, where+".ranges["+strconv.Itoa(j)+"]")
			if err != nil {
				return nil, err
			}
			rs = append(rs, mr)
		}
		p.except[x.Date] = rs
	}
	return p, nil
}

func parseRange(r HoursRange, where string) (minuteRange, error) {
	o, ok1 := parseClock(r.Open)
	c, ok2 := parseClock(r.Close)
	if !ok1 || !ok2 || o == 1440 {
		return minuteRange{}, Errf(CodeBadRequest, where+": open and close must be HH:MM between 00:00 and 24:00 (open before 24:00)")
	}
	if c == 1440 {
		c = 0 // to midnight: crossing into the next day by nothing
	}
	return minuteRange{open: o, close: c}, nil
}

func parseClock(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}

// rangesOn returns the ranges of the date of local (an exception, or the
// weekday's).
func (p *hoursPlan) rangesOn(local time.Time) []minuteRange {
	if rs, ok := p.except[local.Format("2006-01-02")]; ok {
		return rs
	}
	return p.weekly[local.Weekday()]
}

// open reports whether t falls within the schedule.
func (p *hoursPlan) open(t time.Time) bool {
	local := t.In(p.loc)
	min := local.Hour()*60 + local.Minute()
	for _, r := range p.rangesOn(local) {
		if r.close > r.open {
			if min >= r.open && min < r.close {
				return true
			}
		} else if min >= r.open { // crosses midnight: today's part
			return true
		}
	}
	// Yesterday's ranges crossing midnight reach into today. AddDate on
	// the local date keeps the calendar day right across DST changes.
	y, m, d := local.Date()
	prev := time.Date(y, m, d-1, 12, 0, 0, 0, p.loc)
	for _, r := range p.rangesOn(prev) {
		if r.close <= r.open && min < r.close {
			return true
		}
	}
	return false
}
