package chat

import "context"

// Devices: the platform a connection logs in from.

// Platforms a login may name; the index is Client.platform. An omitted
// platform is "other".
var platformNames = [...]string{"other", "web", "ios", "android", "desktop", "miniprogram"}

// parsePlatform maps a login's platform to its index.
func parsePlatform(s string) (uint8, *Error) {
	if s == "" {
		return 0, nil
	}
	for i, n := range platformNames {
		if n == s {
			return uint8(i), nil
		}
	}
	return 0, Errf(CodeBadRequest, "unknown platform \""+clip(s, 32)+"\"; platforms are web, ios, android, desktop, miniprogram, other")
}

// Device policies of an app (AppSettings.Devices): how many connections a
// user may hold at once.
const (
	DevicesMulti          = "multi"            // any number (the default)
	DevicesSingle         = "single"           // a new login closes the user's other connections
	DevicesOnePerPlatform = "one_per_platform" // a new login closes the user's other connections on its platform
)

// CloseReplaced closes a connection that a newer login of the same user
// replaced under the app's device policy; a `kicked` event precedes it.
const CloseReplaced = 4003

// ValidDevices reports whether p names a device policy.
func ValidDevices(p string) bool {
	return p == DevicesMulti || p == DevicesSingle || p == DevicesOnePerPlatform
}

// KickedEvent is the `kicked` event a replaced connection gets before
// close code 4003.
type KickedEvent struct {
	Reason   string `json:"reason"`   // "logged_in_elsewhere"
	Platform string `json:"platform"` // the platform of the login that replaced it
	Policy   string `json:"policy"`   // the app's device policy: single or one_per_platform
}

// enforceDevices closes the connections that cl's login replaces under
// the app's device policy. Called by login after cl is registered; an app
// with policy multi costs one lock-free map read.
func (c *Core) enforceDevices(ctx context.Context, cl *Client) {
	s := c.cachedSettings(cl.id.App)
	if s == nil {
		var err error
		if s, err = c.appSettings(ctx, cl.id.App); err != nil {
			c.cfg.LogError("login: read device policy", err)
			return
		}
	}
	if s.Devices == "" || s.Devices == DevicesMulti {
		return
	}
	// One login of a user at a time decides who stays: two logins at once
	// must not close each other.
	l := c.lockFor("\x04" + userKey(cl.id.App, cl.id.UID))
	l.Lock()
	defer l.Unlock()
	if !cl.loggedIn.Load() {
		return // closed, or replaced itself meanwhile
	}
	if c.cluster != nil {
		c.enforceDevicesCluster(cl.u, s.Devices) // devices_cluster.go
		return
	}
	var ev []byte
	for _, o := range cl.u.online() {
		if o == cl || (s.Devices == DevicesOnePerPlatform && o.platform != cl.platform) {
			continue
		}
		if ev == nil {
			ev = appendEvent(nil, "kicked", KickedEvent{Reason: "logged_in_elsewhere",
				Platform: platformNames[cl.platform], Policy: s.Devices})
		}
		o.reply(ev)
		c.logout(o, "logged in elsewhere")
		o.peer.Close(CloseReplaced, "logged in elsewhere")
	}
}
