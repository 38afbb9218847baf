package reliability

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/convsync/convsync/pkg/emulator"
	"github.com/convsync/convsync/pkg/resource"
)

// shuffleRounds is how many permutations TestUniqueNameShuffle applies:
// RELIABILITY_SHUFFLE_ROUNDS when set (a longer run), else a few.
func shuffleRounds(t *testing.T) int {
	if v := os.Getenv("RELIABILITY_SHUFFLE_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("RELIABILITY_SHUFFLE_ROUNDS=%q: want a positive number", v)
		}
		return n
	}
	return 6
}

// cyclesOf returns the cycles (of two or more) of moving the unique_names
// from have to want: conversation i takes want[i], which have[j] holds.
func cyclesOf(have, want []string) [][]int {
	holder := map[string]int{}
	for i, n := range have {
		holder[n] = i
	}
	seen := make([]bool, len(have))
	var out [][]int
	for i := range have {
		if seen[i] {
			continue
		}
		var cyc []int
		for j := i; !seen[j]; {
			seen[j] = true
			cyc = append(cyc, j)
			next, ok := holder[want[j]]
			if !ok {
				break
			}
			j = next
		}
		if len(cyc) > 1 && want[cyc[len(cyc)-1]] == have[cyc[0]] {
			out = append(out, cyc)
		}
	}
	return out
}

// TestUniqueNameShuffle moves unique_names among managed conversations in
// random permutations while the real binary is SIGKILLed at random moments.
// A permutation with a cycle must be refused at once by the plan (no
// request sent, no hang); it is then applied the way the message says, in
// two applies through a temporary name for one member of each cycle. After
// every round: one conversation per spec, each keeping its SID (a rename is
// an update), nothing unaccounted for, and a clean plan. Every run has a
// deadline: a hang fails the test.
func TestUniqueNameShuffle(t *testing.T) {
	rnd := rand.New(rand.NewPCG(seed(t), 3))
	const n = 10
	e := newEnv(t, emulator.Faults{Latency: 10 * time.Millisecond})
	e.writeSpec("services.yaml", "kind: Service\nname: s\nfriendly_name: Shuffle\n")
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("u%02d", i)
	}
	write := func(unique []string) {
		var b strings.Builder
		for i, u := range unique {
			fmt.Fprintf(&b, "---\nkind: Conversation\nname: c%02d\nservice: s\nunique_name: %s\nfriendly_name: Conversation %d\n", i, u, i)
		}
		e.writeSpec("conversations.yaml", b.String())
	}
	write(names)
	e.must(0, "apply", "--auto-approve", "--rate-limit", "0")
	sids := map[string]string{}
	for i := range names {
		addr := resource.Address{Kind: resource.KindConversation, Name: fmt.Sprintf("c%02d", i)}
		sids[addr.String()] = e.readState().Get(addr).SID
	}
	check := func(round int) {
		t.Helper()
		a := e.check(desired(t, e))
		e.mustConverge(a)
		st := e.readState()
		for addr, sid := range sids {
			if r := st.Resources[addr]; r == nil || r.SID != sid {
				t.Fatalf("round %d: %s is now %+v, want it kept as %s (a rename is an update)", round, addr, r, sid)
			}
		}
	}

	rounds, refused, chains, kills := shuffleRounds(t), 0, 0, 0
	applyWithKills := func() {
		k := newKiller(e, rnd)
		kills += k.killUntilDone(t, 3, n)
		finish(t, e)
	}
	have := append([]string(nil), names...)
	for round := 1; round <= rounds; round++ {
		want := append([]string(nil), have...)
		if round%3 == 0 {
			// A chain: names move along a random run of conversations, the
			// first taking a name nobody holds. Ordered, never refused.
			order := rnd.Perm(n)[:2+rnd.IntN(n-2)]
			for i := len(order) - 1; i > 0; i-- {
				want[order[i]] = have[order[i-1]]
			}
			want[order[0]] = fmt.Sprintf("v%02d-%d", order[0], round)
		} else {
			rnd.Shuffle(len(want), func(i, j int) { want[i], want[j] = want[j], want[i] })
		}
		cycles := cyclesOf(have, want)
		write(want)
		before := e.writes()
		r := e.run("plan")
		if len(cycles) > 0 {
			refused++
			if r.code != 1 || !strings.Contains(r.stderr, "move in a cycle") || !strings.Contains(r.stderr, "two applies") {
				t.Fatalf("round %d: a permutation with %d cycles must be refused: %s", round, len(cycles), r)
			}
			if e.writes() != before {
				t.Fatalf("round %d: the refused plan sent %d writes", round, e.writes()-before)
			}
			// The way out the message gives: one member of each cycle
			// takes a temporary name first, then its final one.
			step := append([]string(nil), want...)
			for _, cyc := range cycles {
				step[cyc[0]] = want[cyc[0]] + "-tmp"
			}
			write(step)
			applyWithKills()
			write(want)
		} else if r.code != 0 {
			t.Fatalf("round %d: plan of a permutation without a cycle: %s", round, r)
		} else {
			chains++
		}
		applyWithKills()
		check(round)
		have = want
	}
	t.Logf("unique_name shuffle: %d rounds of %d conversations: %d permutations with cycles refused at plan time (0 writes) and applied in two steps, %d without a cycle applied at once; kills %d; duplicates 0, SIDs kept %d/%d, hangs 0",
		rounds, n, refused, chains, kills, len(sids), len(sids))
}
