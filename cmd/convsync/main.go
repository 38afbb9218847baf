// Command convsync keeps Twilio Conversations in the shape declared in YAML
// specs. See the README and docs/.
package main

import (
	"os"

	"github.com/convsync/convsync/internal/cli"
)

func main() {
	os.Exit(cli.New(os.Stdin, os.Stdout, os.Stderr, os.Getenv).Run(os.Args[1:]))
}
