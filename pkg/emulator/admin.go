package emulator

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

// adminPrefix is where the test controls live. They need the same Basic auth as
// the API and are not counted in Stats.
const adminPrefix = "/__emulator/"

// faultsWire is Faults as the admin routes read and write it (latency as a Go
// duration string such as "50ms").
type faultsWire struct {
	Latency                    string  `json:"latency"`
	ActionsPerSecondPerService float64 `json:"actions_per_second_per_service"`
	MaxInFlight                int     `json:"max_in_flight"`
	Error500BeforeWrite        float64 `json:"error_500_before_write"`
	Error500AfterWrite         float64 `json:"error_500_after_write"`
	Seed                       int64   `json:"seed"`
}

func toWire(f Faults) faultsWire {
	return faultsWire{
		Latency:                    f.Latency.String(),
		ActionsPerSecondPerService: f.ActionsPerSecondPerService,
		MaxInFlight:                f.MaxInFlight,
		Error500BeforeWrite:        f.Error500BeforeWrite,
		Error500AfterWrite:         f.Error500AfterWrite,
		Seed:                       f.Seed,
	}
}

func (w faultsWire) faults() (Faults, error) {
	var lat time.Duration
	if w.Latency != "" {
		d, err := time.ParseDuration(w.Latency)
		if err != nil {
			return Faults{}, err
		}
		lat = d
	}
	return Faults{
		Latency:                    lat,
		ActionsPerSecondPerService: w.ActionsPerSecondPerService,
		MaxInFlight:                w.MaxInFlight,
		Error500BeforeWrite:        w.Error500BeforeWrite,
		Error500AfterWrite:         w.Error500AfterWrite,
		Seed:                       w.Seed,
	}, nil
}

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, adminPrefix), "/")
	notAllowed := func() {
		writeError(w, newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "Method not allowed"))
	}
	switch name {
	case "stats":
		if r.Method != http.MethodGet {
			notAllowed()
			return
		}
		writeJSON(w, http.StatusOK, s.Stats())
	case "reset-stats":
		if r.Method != http.MethodPost {
			notAllowed()
			return
		}
		s.ResetStats()
		writeJSON(w, http.StatusNoContent, nil)
	case "faults":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, toWire(s.Faults()))
		case http.MethodPut:
			var in faultsWire
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&in); err != nil {
				writeError(w, errInvalidParam("faults: %v", err))
				return
			}
			f, err := in.faults()
			if err == nil {
				err = s.SetFaults(f)
			}
			if err != nil {
				writeError(w, errInvalidParam("faults: %v", err))
				return
			}
			writeJSON(w, http.StatusOK, toWire(s.Faults()))
		default:
			notAllowed()
		}
	case "services":
		if r.Method != http.MethodGet {
			notAllowed()
			return
		}
		writeJSON(w, http.StatusOK, s.Services())
	case "conversations", "roles", "users", "settings":
		if r.Method != http.MethodGet {
			notAllowed()
			return
		}
		svc := r.URL.Query().Get("service")
		var out any
		var err error
		switch name {
		case "conversations":
			out, err = s.Conversations(svc)
		case "roles":
			out, err = s.Roles(svc)
		case "users":
			out, err = s.Users(svc)
		default:
			out, err = s.Settings(svc)
		}
		if err != nil {
			writeError(w, errNotFound(r.URL.Path))
			return
		}
		writeJSON(w, http.StatusOK, out)
	case "participants", "conversation-webhooks":
		if r.Method != http.MethodGet {
			notAllowed()
			return
		}
		q := r.URL.Query()
		var out any
		var err error
		if name == "participants" {
			out, err = s.Participants(q.Get("service"), q.Get("conversation"))
		} else {
			out, err = s.ConversationWebhooks(q.Get("service"), q.Get("conversation"))
		}
		if err != nil {
			writeError(w, errNotFound(r.URL.Path))
			return
		}
		writeJSON(w, http.StatusOK, out)
	case "role-permission-order", "webhook-filter-order":
		if r.Method != http.MethodPut {
			notAllowed()
			return
		}
		var in struct {
			Order []string `json:"order"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			writeError(w, errInvalidParam("%s: %v", name, err))
			return
		}
		q := r.URL.Query()
		var err error
		if name == "role-permission-order" {
			err = s.SetRolePermissionOrder(q.Get("service"), q.Get("role"), in.Order)
		} else {
			err = s.SetWebhookFilterOrder(q.Get("service"), in.Order)
		}
		switch {
		case errors.Is(err, ErrNotFound):
			writeError(w, errNotFound(r.URL.Path))
		case err != nil:
			writeError(w, errInvalidParam("%s: %v", name, err))
		default:
			writeJSON(w, http.StatusNoContent, nil)
		}
	default:
		writeError(w, errNotFound(r.URL.Path))
	}
}
