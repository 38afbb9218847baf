package resource

// IsSID reports whether s is a Twilio SID with the given two-letter prefix:
// the prefix followed by 32 hex digits (Twilio's contract accepts either case;
// Twilio itself issues lowercase).
func IsSID(s, prefix string) bool {
	if len(s) != 34 || s[:2] != prefix {
		return false
	}
	for i := 2; i < 34; i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// LooksLikeSID reports whether s has the shape of any Twilio SID (two letters
// and 32 hex digits). Twilio refuses such unique_names (error 50390).
func LooksLikeSID(s string) bool {
	if len(s) != 34 || !isLetter(s[0]) || !isLetter(s[1]) {
		return false
	}
	return IsSID(s, s[:2])
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
