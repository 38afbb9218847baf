package spec

import (
	"strings"
	"testing"
)

// A secret pasted where its reference belongs (in env:, in file:, as a
// list or a key of its own) is refused without the message repeating it:
// the messages of `validate`, `plan` and `validate --json` are printed and
// logged.
func TestMisplacedSecretIsRefusedWithoutRepeatingIt(t *testing.T) {
	const value = "AAAA-misplaced-LEAKCHECK-9x/+=" // a key's usual characters
	for name, field := range map[string]string{
		"value in env":          `{env: "` + value + `"}`,
		"value in env, two env": `{env: "` + value + `", file: x}`,
		"value as a list":       `["` + value + `"]`,
		"value in file list":    `{file: ["` + value + `"]}`,
		"value in env mapping":  `{env: {v: "` + value + `"}}`,
		"value as a number-ish": `!!binary "` + value + `"`,
	} {
		t.Run(name, func(t *testing.T) {
			spec := "kind: PushCredential\nname: android\ntype: fcm\nsecret: " + field + "\n"
			_, problems := Parse("push.yaml", []byte(spec))
			if len(problems) == 0 {
				t.Fatal("the misplaced secret was accepted")
			}
			if msg := problems.Error(); strings.Contains(msg, "LEAKCHECK") {
				t.Errorf("the problem repeats the secret: %q", msg)
			}
		})
	}
}
