package emulator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	defaultPageSize = 50
	maxPageSize     = 100
)

// listQuery is a validated list request.
type listQuery struct {
	pageSize int
	page     int
	token    *pageToken
	rawToken string
	state    string
	// startDate and endDate filter by date_created. Either one turns the order
	// to newest first, as Twilio's description of the filters says.
	startDate, endDate *time.Time
	rawStart, rawEnd   string
}

func (q listQuery) newestFirst() bool { return q.startDate != nil || q.endDate != nil }

// listRules are the paging rules of one list.
type listRules struct {
	// filters: the list takes State, StartDate and EndDate (conversations).
	filters bool
	// maxPageSize is the list's own maximum (the contract's PageSize maximum).
	maxPageSize int
	// clamp: a PageSize over the maximum is cut to it instead of refused.
	clamp bool
}

// strictRules are the rules of the services and conversations lists: 1..100,
// anything else refused.
var strictRules = listRules{maxPageSize: maxPageSize}

func parseListQuery(r *http.Request, rules listRules) (listQuery, *apiError) {
	v := r.URL.Query()
	q := listQuery{pageSize: defaultPageSize}
	if q.pageSize > rules.maxPageSize {
		q.pageSize = rules.maxPageSize
	}
	if has(v, "PageSize") {
		n, err := strconv.Atoi(v.Get("PageSize"))
		if err == nil && rules.clamp && n > rules.maxPageSize {
			n = rules.maxPageSize
		}
		// Strict where clamp is off: the contract says 1..100, and a client that
		// asks for more should learn it here rather than get fewer items than it
		// expects.
		if err != nil || n < 1 || n > rules.maxPageSize {
			return q, errInvalidParam("PageSize %q must be an integer from 1 to %d", v.Get("PageSize"), rules.maxPageSize)
		}
		q.pageSize = n
	}
	if has(v, "Page") {
		n, err := strconv.Atoi(v.Get("Page"))
		if err != nil || n < 0 {
			return q, errInvalidParam("Page %q must be an integer of 0 or more", v.Get("Page"))
		}
		q.page = n
	}
	if rules.filters {
		if has(v, "State") {
			switch st := v.Get("State"); st {
			case stateActive, stateInactive, stateClosed, stateInitializing:
				q.state = st
			default:
				return q, errInvalidParam("State %q must be one of active, inactive, closed", st)
			}
		}
		for _, f := range []struct {
			param    string
			endOfDay bool
			into     **time.Time
			raw      *string
		}{{"StartDate", false, &q.startDate, &q.rawStart}, {"EndDate", true, &q.endDate, &q.rawEnd}} {
			if !has(v, f.param) {
				continue
			}
			t, ok := parseListDate(v.Get(f.param), f.endOfDay)
			if !ok {
				return q, errInvalidParam("%s %q must be an ISO 8601 date such as 2015-12-16 or 2015-12-16T00:00:00Z", f.param, v.Get(f.param))
			}
			*f.into = &t
			*f.raw = v.Get(f.param)
		}
	}
	if has(v, "PageToken") {
		q.rawToken = v.Get("PageToken")
	}
	return q, nil
}

// listScope is what a page token belongs to: a token is only valid for the
// list it came from.
type listScope struct {
	key        string // the list's items key: "services", "conversations", "roles"...
	serviceSID string
}

// pageToken marks a position as "after" (or "before") the item with this
// sequence number. Sequence numbers never repeat, so the position survives
// deletions between pages.
type pageToken struct {
	before bool
	seq    uint64
}

const pageTokenPrefix = "PT"

func (s *Server) tokenMAC(scope listScope, newestFirst bool, payload []byte) []byte {
	m := hmac.New(sha256.New, s.tokenKey)
	m.Write([]byte(scope.key + "/" + scope.serviceSID + "/" + strconv.FormatBool(newestFirst) + "/"))
	m.Write(payload)
	return m.Sum(nil)[:6]
}

// encodeToken writes "PT" + hex: hex keeps it free of ".digits" runs, which
// twilio-go strips from query strings.
func (s *Server) encodeToken(scope listScope, newestFirst bool, t pageToken) string {
	payload := make([]byte, 9)
	if t.before {
		payload[0] = 1
	}
	binary.BigEndian.PutUint64(payload[1:], t.seq)
	return pageTokenPrefix + hex.EncodeToString(append(payload, s.tokenMAC(scope, newestFirst, payload)...))
}

func (s *Server) decodeToken(scope listScope, newestFirst bool, raw string) (pageToken, *apiError) {
	bad := newError(http.StatusBadRequest, CodeInvalidPageToken, "Invalid PageToken %q: follow next_page_url as given", raw)
	b, err := hex.DecodeString(strings.TrimPrefix(raw, pageTokenPrefix))
	if !strings.HasPrefix(raw, pageTokenPrefix) || err != nil || len(b) != 15 || b[0] > 1 {
		return pageToken{}, bad
	}
	if !hmac.Equal(b[9:], s.tokenMAC(scope, newestFirst, b[:9])) {
		return pageToken{}, bad
	}
	return pageToken{before: b[0] == 1, seq: binary.BigEndian.Uint64(b[1:9])}, nil
}

// listPage is one page and the tokens of its neighbours ("" = none).
type listPage[T any] struct {
	items            []T
	nextTok, prevTok string
}

// paginate cuts one page out of order (sorted by sequence number ascending),
// walking from the token's position and skipping items that do not match.
// With no filter the cost is a binary search plus the page itself.
func paginate[T any](s *Server, q listQuery, scope listScope, order []T, seqOf func(T) uint64, match func(T) bool) (listPage[T], *apiError) {
	var out listPage[T]
	desc := q.newestFirst()
	n := len(order)
	at := func(i int) T {
		if desc {
			return order[n-1-i]
		}
		return order[i]
	}
	searchSeq := func(pred func(uint64) bool) int {
		return sort.Search(n, func(j int) bool { return pred(seqOf(order[j])) })
	}
	// firstAfter: list index of the first item after seq in list order.
	firstAfter := func(seq uint64) int {
		if desc {
			return n - searchSeq(func(x uint64) bool { return x >= seq })
		}
		return searchSeq(func(x uint64) bool { return x > seq })
	}
	// lastBefore: list index of the last item before seq in list order.
	lastBefore := func(seq uint64) int {
		if desc {
			return n - 1 - searchSeq(func(x uint64) bool { return x > seq })
		}
		return searchSeq(func(x uint64) bool { return x >= seq }) - 1
	}
	anyMatch := func(from, to, step int) bool {
		for i := from; i != to; i += step {
			if match(at(i)) {
				return true
			}
		}
		return false
	}

	firstIdx, lastIdx := -1, -1
	if q.rawToken != "" {
		tok, perr := s.decodeToken(scope, desc, q.rawToken)
		if perr != nil {
			return out, perr
		}
		q.token = &tok
	}
	if q.token != nil && q.token.before {
		var rev []T
		i := lastBefore(q.token.seq)
		for ; i >= 0 && len(rev) < q.pageSize; i-- {
			if x := at(i); match(x) {
				rev = append(rev, x)
				if lastIdx < 0 {
					lastIdx = i
				}
				firstIdx = i
			}
		}
		for j := len(rev) - 1; j >= 0; j-- {
			out.items = append(out.items, rev[j])
		}
	} else {
		start := 0
		if q.token != nil {
			start = firstAfter(q.token.seq)
		}
		for i := start; i < n && len(out.items) < q.pageSize; i++ {
			if x := at(i); match(x) {
				out.items = append(out.items, x)
				if firstIdx < 0 {
					firstIdx = i
				}
				lastIdx = i
			}
		}
	}
	if len(out.items) == 0 {
		return out, nil
	}
	if anyMatch(lastIdx+1, n, 1) {
		out.nextTok = s.encodeToken(scope, desc, pageToken{seq: seqOf(at(lastIdx))})
	}
	if anyMatch(firstIdx-1, -1, -1) {
		out.prevTok = s.encodeToken(scope, desc, pageToken{before: true, seq: seqOf(at(firstIdx))})
	}
	return out, nil
}

// metaJSON is the "meta" object of a list answer, in Twilio's field order.
type metaJSON struct {
	Page            int     `json:"page"`
	PageSize        int     `json:"page_size"`
	FirstPageURL    string  `json:"first_page_url"`
	PreviousPageURL *string `json:"previous_page_url"`
	URL             string  `json:"url"`
	NextPageURL     *string `json:"next_page_url"`
	Key             string  `json:"key"`
}

func (p listPage[T]) meta(listURL string, q listQuery, key string) metaJSON {
	pageURL := func(page int, token string) string {
		var b strings.Builder
		b.WriteString(listURL)
		b.WriteByte('?')
		if q.rawStart != "" {
			b.WriteString("StartDate=" + url.QueryEscape(q.rawStart) + "&")
		}
		if q.rawEnd != "" {
			b.WriteString("EndDate=" + url.QueryEscape(q.rawEnd) + "&")
		}
		if q.state != "" {
			b.WriteString("State=" + url.QueryEscape(q.state) + "&")
		}
		b.WriteString("PageSize=" + strconv.Itoa(q.pageSize) + "&Page=" + strconv.Itoa(page))
		if token != "" {
			b.WriteString("&PageToken=" + url.QueryEscape(token))
		}
		return b.String()
	}
	m := metaJSON{
		Page:         q.page,
		PageSize:     q.pageSize,
		FirstPageURL: pageURL(0, ""),
		URL:          pageURL(q.page, q.rawToken),
		Key:          key,
	}
	if p.nextTok != "" {
		u := pageURL(q.page+1, p.nextTok)
		m.NextPageURL = &u
	}
	if p.prevTok != "" {
		prev := q.page - 1
		if prev < 0 {
			prev = 0
		}
		u := pageURL(prev, p.prevTok)
		m.PreviousPageURL = &u
	}
	return m
}
