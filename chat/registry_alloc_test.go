//go:build !race

package chat

import "testing"

// A user's first device costs one allocation (the 16-byte snapshot) and
// going offline none; reading the snapshot is free.
func TestUserDevicesAllocs(t *testing.T) {
	cl := &Client{}
	cases := []struct {
		name   string
		online bool // the device is online while fn runs
		fn     func(u *user)
		want   float64
	}{
		{name: "online-offline", want: 1, fn: func(u *user) { u.add(cl); u.remove(cl) }},
		{name: "read", online: true, want: 0, fn: func(u *user) {
			if len(u.online()) != 1 {
				t.Fatal("not online")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := &user{uid: "alice"}
			if tc.online {
				u.add(cl)
			}
			if got := testing.AllocsPerRun(100, func() { tc.fn(u) }); got != tc.want {
				t.Fatalf("%v allocations, want %v", got, tc.want)
			}
		})
	}
}
