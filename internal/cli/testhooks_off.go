//go:build !convsync_testhooks

package cli

import "github.com/convsync/convsync/pkg/twilioapi"

// testHooks does nothing in a normal build (see testhooks_on.go).
func testHooks(*twilioapi.Config, func(string) string) {}
