// Command bench measures convsync against Twilio's limits: it starts the
// emulator in-process over real HTTP, seeds it, runs the scenarios of
// docs/performance.md (refresh cost against a per-resource refresh, the
// list-or-fetch choice, plan time with added latency, growth with N, the
// daemon's reaction to one spec edit among 10,000, and, with -apply, create
// throughput under the 30/s rate limit) and prints Markdown tables. The
// daemon scenario builds and runs the real `convsync run` binary.
//
//	go run ./bench                 # every scenario but apply (a few minutes)
//	go run ./bench -apply          # also the ~45 s apply throughput runs
//	go run ./bench -only growth    # one scenario
//	go run ./bench -only daemon    # the daemon's reaction (about 70 s)
//
// The per-resource refresh (one GET per owned conversation, as the Terraform
// providers do) exists only here, as the comparison.
package main
