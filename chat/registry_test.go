package chat

import (
	"slices"
	"strconv"
	"testing"
)

// userTable finds every user it holds and no other, stays between a load of
// 3/8 and 3/4 once grown, and keeps a power-of-two size.
func TestUserTable(t *testing.T) {
	cases := []struct {
		name  string
		users int
	}{
		{name: "empty", users: 0},
		{name: "one", users: 1},
		{name: "first-table-full", users: userTableMin * 3 / 4},
		{name: "first-growth", users: userTableMin*3/4 + 1},
		{name: "thousand", users: 1000},
		{name: "twenty-thousand", users: 20000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tab userTable
			if tab.get("u0") != nil {
				t.Fatal("empty table found a user")
			}
			for i := range tc.users {
				uid := "u" + strconv.Itoa(i)
				if tab.get(uid) != nil {
					t.Fatalf("%s found before it was added", uid)
				}
				tab.add(&user{uid: uid})
			}
			if tab.n != tc.users {
				t.Fatalf("n = %d, want %d", tab.n, tc.users)
			}
			size := len(tab.slots)
			if size&(size-1) != 0 {
				t.Fatalf("%d slots: not a power of two", size)
			}
			if 4*tab.n > 3*size || (size > userTableMin && 8*tab.n < 3*size) {
				t.Fatalf("%d users in %d slots: load outside [3/8, 3/4]", tab.n, size)
			}
			for i := range tc.users {
				uid := "u" + strconv.Itoa(i)
				if u := tab.get(uid); u == nil || u.uid != uid {
					t.Fatalf("get(%q) = %v", uid, u)
				}
			}
			for _, uid := range []string{"", "u", "u-1", "u" + strconv.Itoa(tc.users), "U0"} {
				if u := tab.get(uid); u != nil {
					t.Fatalf("get(%q) found %q", uid, u.uid)
				}
			}
		})
	}
}

func BenchmarkUserTableGet(b *testing.B) {
	var tab userTable
	uids := make([]string, 20000)
	for i := range uids {
		uids[i] = "user-" + strconv.Itoa(i)
		tab.add(&user{uid: uids[i]})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if tab.get(uids[i]) == nil {
			b.Fatal("missing")
		}
		i++
		if i == len(uids) {
			i = 0
		}
	}
}

// A user's device snapshot follows adds and removes, reports the first and
// last device, and a snapshot already handed out never changes.
func TestUserDevices(t *testing.T) {
	a, b, c := &Client{}, &Client{}, &Client{}
	type step struct {
		add    *Client // the device to add; nil: remove `remove`
		remove *Client
		edge   bool // add: first device; remove: last device
		want   []*Client
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{name: "one-device", steps: []step{
			{add: a, edge: true, want: []*Client{a}},
			{remove: a, edge: true, want: nil},
		}},
		{name: "three-devices", steps: []step{
			{add: a, edge: true, want: []*Client{a}},
			{add: b, want: []*Client{a, b}},
			{add: c, want: []*Client{a, b, c}},
			{remove: b, want: []*Client{a, c}},
			{remove: a, want: []*Client{c}},
			{remove: c, edge: true, want: nil},
		}},
		{name: "remove-unknown", steps: []step{
			{add: a, edge: true, want: []*Client{a}},
			{remove: b, want: []*Client{a}},
			{add: b, want: []*Client{a, b}},
			{remove: c, want: []*Client{a, b}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := &user{uid: "alice"}
			var seen [][]*Client // every snapshot handed out, with a copy of it
			var copies [][]*Client
			for i, s := range tc.steps {
				var edge bool
				if s.add != nil {
					edge = u.add(s.add)
				} else {
					edge = u.remove(s.remove)
				}
				got := u.online()
				if edge != s.edge || !slices.Equal(got, s.want) {
					t.Fatalf("step %d: online %v edge %v, want %v edge %v", i, got, edge, s.want, s.edge)
				}
				seen = append(seen, got)
				copies = append(copies, slices.Clone(got))
			}
			for i := range seen {
				if !slices.Equal(seen[i], copies[i]) {
					t.Fatalf("snapshot %d changed to %v, was %v", i, seen[i], copies[i])
				}
			}
		})
	}
}
