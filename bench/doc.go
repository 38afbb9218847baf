// Command bench measures convsync against Twilio's limits: it starts the
// emulator in-process over real HTTP, seeds it, runs the scenarios of
// docs/performance.md (refresh cost against a per-resource refresh, the
// list-or-fetch choice, plan time with added latency, growth with N, and,
// with -apply, create throughput under the 30/s rate limit) and prints
// Markdown tables.
//
//	go run ./bench                 # every scenario but apply (a few minutes)
//	go run ./bench -apply          # also the ~45 s apply throughput runs
//	go run ./bench -only growth    # one scenario
//
// The per-resource refresh (one GET per owned conversation, as the Terraform
// providers do) exists only here, as the comparison.
package main
