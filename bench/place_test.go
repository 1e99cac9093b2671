package bench

import (
	"strings"
	"testing"
)

func TestPlaceNode(t *testing.T) {
	cases := []struct {
		name          string
		n, unit, upto int
		want          string // address of users 0..upto-1
	}{
		{"one address", 1, 2, 4, "0000"},
		{"spread over 3", 3, 1, 7, "0120120"},
		{"spread: unit 0 is 1", 2, 0, 4, "0101"},
		{"pairs together over 2", 2, 2, 8, "00110011"},
		{"pairs together over 3", 3, 2, 8, "00112200"},
		{"groups of 3 over 2", 2, 3, 9, "000111000"},
	}
	for _, tc := range cases {
		var b strings.Builder
		for u := range tc.upto {
			b.WriteByte(byte('0' + placeNode(u, tc.n, tc.unit)))
		}
		if b.String() != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, b.String(), tc.want)
		}
	}
}

func TestPlaceUnitFor(t *testing.T) {
	p2p, grp := &P2P{}, &Group{Members: 5}
	for _, tc := range []struct {
		place string
		s     Scenario
		unit  int
		err   string
	}{
		{"", p2p, 1, ""},
		{PlaceSpread, grp, 1, ""},
		{PlaceTogether, p2p, 2, ""},
		{PlaceTogether, grp, 5, ""},
		{PlaceTogether, &Churn{}, 0, "is for p2p and group"},
		{"pair", p2p, 0, "want spread or together"},
	} {
		unit, err := placeUnitFor(tc.place, tc.s)
		if unit != tc.unit || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("placeUnitFor(%q, %s) = %d, %v; want %d, %q", tc.place, tc.s.Name(), unit, err, tc.unit, tc.err)
		}
	}
}

// An opener with pairs kept together (unit 2) over three fake servers:
// pair k's two users log in on server k mod 3.
func TestOpenPlacesPairsTogether(t *testing.T) {
	got := loginsPerServer(t, 3, 2, 8)
	want := [][]string{{"tok-0", "tok-1", "tok-6", "tok-7"}, {"tok-2", "tok-3"}, {"tok-4", "tok-5"}}
	for k := range 3 {
		if strings.Join(got[k], ",") != strings.Join(want[k], ",") {
			t.Errorf("server %d saw %v, want %v", k, got[k], want[k])
		}
	}
}
