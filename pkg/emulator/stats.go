package emulator

import (
	"strconv"
	"sync"
)

// Stats counts the API requests the emulator answered (admin routes and
// out-of-band calls are not counted).
type Stats struct {
	Total int64 `json:"total"`
	// ByRoute is keyed by method and route pattern, e.g.
	// "GET /v1/Services/{ServiceSid}/Conversations".
	ByRoute map[string]int64 `json:"by_route"`
	// ByStatus is keyed by HTTP status, e.g. "429".
	ByStatus map[string]int64 `json:"by_status"`
	// ByRouteStatus is keyed by route and status, e.g.
	// "POST /v1/Services/{ServiceSid}/Conversations 201".
	ByRouteStatus map[string]int64 `json:"by_route_status"`
}

type statsCounter struct {
	mu sync.Mutex
	s  Stats
}

func (c *statsCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s = Stats{ByRoute: map[string]int64{}, ByStatus: map[string]int64{}, ByRouteStatus: map[string]int64{}}
}

func (c *statsCounter) count(route string, status int) {
	st := strconv.Itoa(status)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.Total++
	c.s.ByRoute[route]++
	c.s.ByStatus[st]++
	c.s.ByRouteStatus[route+" "+st]++
}

func (c *statsCounter) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := Stats{Total: c.s.Total, ByRoute: map[string]int64{}, ByStatus: map[string]int64{}, ByRouteStatus: map[string]int64{}}
	for k, v := range c.s.ByRoute {
		out.ByRoute[k] = v
	}
	for k, v := range c.s.ByStatus {
		out.ByStatus[k] = v
	}
	for k, v := range c.s.ByRouteStatus {
		out.ByRouteStatus[k] = v
	}
	return out
}

// Stats returns a copy of the request counters.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

// ResetStats sets every counter back to zero.
func (s *Server) ResetStats() { s.stats.reset() }
