package bench

import (
	"errors"
	"strconv"
)

// Placement of the users' connections over several WebSocket addresses
// (Target.WSAddrs: the nodes of a chatd cluster), Options.Place.
const (
	// PlaceSpread puts user i on address i mod n: the two users of a
	// p2p pair (2k, 2k+1), and the members of a group, on different
	// nodes, so every message crosses nodes. The default.
	PlaceSpread = "spread"
	// PlaceTogether keeps each unit of users on one node: p2p pair k, or
	// group k, on address k mod n, so no message crosses nodes (beyond
	// what the server itself sends elsewhere). Measures what splitting
	// pairs or groups costs, against PlaceSpread.
	PlaceTogether = "together"
)

// placedScenario is a scenario whose users come in units that
// PlaceTogether keeps on one node.
type placedScenario interface {
	// placeUnit is how many consecutive users make one unit (a pair: 2;
	// a group: its members).
	placeUnit() int
}

func (s *P2P) placeUnit() int   { return 2 }
func (s *Group) placeUnit() int { return s.Members }

// placeNode is the index, of n addresses, of user's connection: users
// in consecutive units of unit users (1: each user its own unit), unit k
// on address k mod n.
func placeNode(user, n, unit int) int {
	if n <= 1 {
		return 0
	}
	return (user / max(unit, 1)) % n
}

// placeUnitFor checks place for s and returns the unit placeNode takes.
func placeUnitFor(place string, s Scenario) (int, error) {
	switch place {
	case "", PlaceSpread:
		return 1, nil
	case PlaceTogether:
		p, ok := s.(placedScenario)
		if !ok {
			return 0, errors.New("--place " + PlaceTogether + " is for p2p and group (it keeps a pair's or a group's users on one node); " +
				s.Name() + " places user i on address i mod n")
		}
		return p.placeUnit(), nil
	}
	return 0, errors.New("--place " + strconv.Quote(place) + ": want " + PlaceSpread + " or " + PlaceTogether)
}

// placeNote is the report's note on how the connections were placed over
// n addresses.
func placeNote(place string, s Scenario, n int) string {
	ns := strconv.Itoa(n)
	how := "user i on address i mod " + ns
	if place == PlaceTogether {
		unit := "pair"
		if s.Name() == "group" {
			unit = "group"
		}
		how = "--place together: " + unit + " k on address k mod " + ns + ", its users on one node"
	}
	return "connections spread over " + ns + " WebSocket addresses (" + how +
		"); the server figures (status, memory, /metrics) are those of the HTTP address's node only"
}
