package emulator

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convsync/convsync/pkg/resource"
)

// Options configure a Server.
type Options struct {
	// AccountSID and AuthToken are the accepted Basic-auth credentials. The
	// account SID (AC + 32 hex) also appears in every resource.
	AccountSID, AuthToken string
	// APIKey and APISecret are an optional second accepted pair (username =
	// APIKey), as Twilio accepts API keys in place of the auth token.
	APIKey, APISecret string
	// DataFile: "" keeps everything in memory. Otherwise the data is loaded from
	// it at start (a damaged file is an error, never silently emptied) and saved
	// atomically after every write.
	DataFile string
	// DefaultMessagingServiceSID is given to conversations created without a
	// MessagingServiceSid, as Twilio assigns the account's default one. "" means
	// a stable SID derived from the account SID.
	DefaultMessagingServiceSID string
	Faults                     Faults
	// Now is the clock (timers, dates, rate limits); nil means time.Now.
	Now func() time.Time
}

// Faults are the failures the emulator injects. The zero value injects none.
type Faults struct {
	// Latency is added to every API request before it is handled.
	Latency time.Duration
	// ActionsPerSecondPerService limits, per service, conversation creates and
	// deletes together with role and user creates, updates and deletes (and,
	// at the same rate, per conversation its updates together with its
	// participant creates, updates and deletes) as Twilio does (30/s in
	// production); over it the answer is 429 / 20429 with Retry-After. 0 turns
	// the limit off.
	ActionsPerSecondPerService float64
	// MaxInFlight answers 429 / 20429 with Retry-After to requests beyond this
	// many concurrent ones (Twilio's account concurrency limit). 0 = off.
	MaxInFlight int
	// Error500BeforeWrite is the probability (0..1) that a write (POST, DELETE)
	// is answered 500 without doing anything.
	Error500BeforeWrite float64
	// Error500AfterWrite is the probability (0..1) that a write is done and
	// then answered 500: a lost answer.
	Error500AfterWrite float64
	// Seed makes the fault dice reproducible.
	Seed int64
}

func (f Faults) validate() error {
	switch {
	case f.Latency < 0:
		return fmt.Errorf("faults: latency %s must not be negative", f.Latency)
	case f.ActionsPerSecondPerService < 0:
		return fmt.Errorf("faults: rate limit %g must not be negative", f.ActionsPerSecondPerService)
	case f.MaxInFlight < 0:
		return fmt.Errorf("faults: max in flight %d must not be negative", f.MaxInFlight)
	case f.Error500BeforeWrite < 0 || f.Error500BeforeWrite > 1:
		return fmt.Errorf("faults: error rate before write %g must be between 0 and 1", f.Error500BeforeWrite)
	case f.Error500AfterWrite < 0 || f.Error500AfterWrite > 1:
		return fmt.Errorf("faults: error rate after write %g must be between 0 and 1", f.Error500AfterWrite)
	}
	return nil
}

// Server is the emulator. It is an http.Handler, safe for concurrent use.
type Server struct {
	accountSID  string
	credentials [][2]string // accepted (username, password) pairs
	dataFile    string
	defaultMG   string
	defaultIS   string
	now         func() time.Time
	tokenKey    []byte // binds page tokens to this account, so made-up ones are refused

	mu       sync.RWMutex             // guards the data below
	services *collection[serviceData] // by Seq, indexed by SID
	account  *accountData             // what is not in a service (account*.go)
	nextSeq  uint64

	faultsMu sync.Mutex // guards faults and dice
	faults   Faults
	dice     *rand.Rand

	inFlight atomic.Int64
	stats    statsCounter

	// testHookInFlight, when set, runs while a request holds its in-flight slot.
	testHookInFlight func()
}

// DefaultServiceName is the friendly_name of the account's default service.
const DefaultServiceName = "Default Conversations Service"

// New builds a Server from opts, loading opts.DataFile if it exists.
func New(opts Options) (*Server, error) {
	if !resource.IsSID(opts.AccountSID, "AC") {
		return nil, fmt.Errorf("account SID %q must be AC followed by 32 hex digits", opts.AccountSID)
	}
	if opts.AuthToken == "" {
		return nil, errors.New("auth token must not be empty")
	}
	if (opts.APIKey == "") != (opts.APISecret == "") {
		return nil, errors.New("API key and API secret must be given together")
	}
	if err := opts.Faults.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		accountSID:  opts.AccountSID,
		credentials: [][2]string{{opts.AccountSID, opts.AuthToken}},
		dataFile:    opts.DataFile,
		defaultMG:   opts.DefaultMessagingServiceSID,
		defaultIS:   derivedSID("IS", opts.AccountSID, "default-service"),
		now:         opts.Now,
		services:    newCollection(serviceKind),
		nextSeq:     1,
	}
	if opts.APIKey != "" {
		s.credentials = append(s.credentials, [2]string{opts.APIKey, opts.APISecret})
	}
	if s.defaultMG == "" {
		s.defaultMG = derivedSID("MG", opts.AccountSID, "default-messaging-service")
	} else if !resource.IsSID(s.defaultMG, "MG") {
		return nil, fmt.Errorf("default messaging service SID %q must be MG followed by 32 hex digits", s.defaultMG)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.account = newAccountData(s.defaultIS, s.defaultMG)
	key := sha256.Sum256([]byte("convsync-emulator-page-token:" + opts.AccountSID))
	s.tokenKey = key[:]
	s.setFaults(opts.Faults)
	s.stats.reset()
	if s.dataFile != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	if s.services.get(s.defaultIS) == nil {
		now := s.clock()
		s.addServiceLocked(Service{SID: s.defaultIS, FriendlyName: DefaultServiceName, DateCreated: now, DateUpdated: now})
	}
	return s, nil
}

// derivedSID makes a stable SID from the account SID, so the default service and
// messaging service keep their SIDs across restarts without being stored.
func derivedSID(prefix, accountSID, purpose string) string {
	sum := sha256.Sum256([]byte(purpose + ":" + accountSID))
	return prefix + hex.EncodeToString(sum[:16])
}

// clock returns now in UTC, cut to whole seconds: Twilio shows second precision,
// and storing more would make a value read back differ from the one written.
func (s *Server) clock() time.Time { return s.now().UTC().Truncate(time.Second) }

// DefaultServiceSID is the SID of the account's default service, the one the
// /v1/Conversations routes act on.
func (s *Server) DefaultServiceSID() string { return s.defaultIS }

// AccountSID is the account the emulator serves.
func (s *Server) AccountSID() string { return s.accountSID }

// SetFaults changes the injected faults at run time; the dice restart from
// f.Seed. Invalid values are refused.
func (s *Server) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.setFaults(f)
	return nil
}

func (s *Server) setFaults(f Faults) {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	s.faults = f
	s.dice = rand.New(rand.NewSource(f.Seed))
}

// Faults returns the faults in force.
func (s *Server) Faults() Faults {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	return s.faults
}

// roll reports whether an event of probability p happens, using the seeded dice.
func (s *Server) roll(p func(Faults) float64) bool {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	prob := p(s.faults)
	if prob <= 0 {
		return false
	}
	return s.dice.Float64() < prob
}

func (s *Server) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	for _, c := range s.credentials {
		u := subtle.ConstantTimeCompare([]byte(user), []byte(c[0]))
		p := subtle.ConstantTimeCompare([]byte(pass), []byte(c[1]))
		if u&p == 1 {
			return true
		}
	}
	return false
}

// ServeHTTP answers Twilio API routes under /v1/ and the private admin routes
// under /__emulator/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, adminPrefix) {
		if !s.authorized(r) {
			writeError(w, errUnauthorized())
			return
		}
		s.serveAdmin(w, r)
		return
	}
	rec := &statusRecorder{ResponseWriter: w}
	route := s.serveAPI(rec, r)
	s.stats.count(r.Method+" "+route, rec.status())
}

// serveAPI handles one API request and returns its route pattern for the stats.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) string {
	rt := matchRoute(r)
	faults := s.Faults()

	if max := faults.MaxInFlight; max > 0 {
		if n := s.inFlight.Add(1); n > int64(max) {
			s.inFlight.Add(-1)
			w.Header().Set("Retry-After", "1")
			writeError(w, errTooManyRequests("Too many concurrent requests"))
			return rt.pattern
		}
		defer s.inFlight.Add(-1)
	}
	if s.testHookInFlight != nil {
		s.testHookInFlight()
	}
	if faults.Latency > 0 {
		t := time.NewTimer(faults.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			// The client gave up; nginx's 499 marks that in the stats.
			w.WriteHeader(499)
			return rt.pattern
		}
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		writeError(w, errUnauthorized())
		return rt.pattern
	}
	if rt.handler == nil {
		writeError(w, rt.err)
		return rt.pattern
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, errInvalidParam("the request body could not be read as a form: %v", err))
		return rt.pattern
	}
	isWrite := r.Method == http.MethodPost || r.Method == http.MethodDelete
	if isWrite && s.roll(func(f Faults) float64 { return f.Error500BeforeWrite }) {
		writeError(w, errInternal())
		return rt.pattern
	}
	res := rt.handler(s, r, rt.params)
	if res.err != nil {
		if res.err.retryAfter > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(res.err.retryAfter))
		}
		writeError(w, res.err)
		return rt.pattern
	}
	if isWrite && s.roll(func(f Faults) float64 { return f.Error500AfterWrite }) {
		writeError(w, errInternal())
		return rt.pattern
	}
	writeJSON(w, res.status, res.body)
	return rt.pattern
}

// ListenAndServe serves a new emulator on addr until ctx is done, then shuts
// down gracefully. ready, if not nil, is called with the base URL once the port
// is open (useful with addr "127.0.0.1:0").
func ListenAndServe(ctx context.Context, addr string, opts Options, ready func(baseURL string)) error {
	s, err := New(opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if ready != nil {
		ready("http://" + ln.Addr().String())
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
