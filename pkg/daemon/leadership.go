package daemon

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/convsync/convsync/pkg/leader"
)

// Leadership is how a daemon sharing its state with other processes
// decides whether it may act (the PostgreSQL backend's lease). With none
// (the state file, whose lock is held for the whole run) the daemon always
// leads.
type Leadership interface {
	// Lead blocks until this process leads and its state is ready to use
	// (read again, and any quarantine waited out), or ctx ends.
	Lead(ctx context.Context) error
	// Lost is closed when leadership is lost involuntarily.
	Lost() <-chan struct{}
	// Release ends the lease cleanly; the daemon calls it once no Twilio
	// call is in flight any more.
	Release(ctx context.Context) error
	Status() leader.Status
}

// ErrLeadershipLost is returned by Run when the lease was lost: the daemon
// stopped acting at once and exits with an error, so that its supervisor
// restarts it as a stand-by (nothing of the old leader's memory survives).
var ErrLeadershipLost = errors.New("leadership was lost (the lease could not be renewed in time, or another process or an operator took it); stopped acting")

// Leadership metrics.
const (
	MetricLeader        = "convsync_leader"
	MetricLeaseEpoch    = "convsync_lease_epoch"
	MetricRenewFailures = "convsync_lease_renew_failures_total"
)

// SetLeadership registers the leadership metrics, read from status at
// every scrape.
func (m *Metrics) SetLeadership(workspace string, status func() leader.Status) {
	if m == nil {
		return
	}
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: MetricLeader, ConstLabels: prometheus.Labels{"workspace": workspace},
			Help: "1 while this process leads (holds the state's lease and acts), 0 while it stands by."},
			func() float64 {
				if status().Role == "leader" {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: MetricLeaseEpoch, ConstLabels: prometheus.Labels{"workspace": workspace},
			Help: "The fencing epoch of the lease as this process last saw it: its own while it leads, the leader's while it stands by."},
			func() float64 { return float64(status().LeaderEpoch) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: MetricRenewFailures, ConstLabels: prometheus.Labels{"workspace": workspace},
			Help: "Lease renewals that failed (the database could not be reached); the leader steps down when they last past the renew deadline."},
			func() float64 { return float64(status().RenewFailures) }),
	)
}
