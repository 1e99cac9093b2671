package chat

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
