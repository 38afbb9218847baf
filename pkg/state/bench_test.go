package state

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
)

const benchResources = 100_000

// writeBench writes a state file holding n conversations, as after a big
// apply, and returns its path.
func writeBench(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), DefaultPath)
	s := New()
	s.Serial = 1
	for i := range n {
		s.Put(testConversation(fmt.Sprintf("customer-%06d", i), i+1))
	}
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	if err := Encode(out, s, "bench"); err != nil {
		b.Fatal(err)
	}
	return path
}

// openBench opens a state file holding n conversations for writing.
func openBench(b *testing.B, n int, opts Options) (*File, string) {
	b.Helper()
	path := writeBench(b, n)
	f, err := Open(path, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Close() })
	return f, path
}

func reportFileSize(b *testing.B, path string) {
	if info, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(info.Size())/(1<<20), "MiB/file")
	}
}

// BenchmarkSave100k is the cost of one recorded change (one Update that
// changes one resource, saved before it returns) in a state of 100,000
// resources: one fsynced journal line, plus its share of the compaction every
// DefaultCompactEvery changes when b.N reaches that far.
func BenchmarkSave100k(b *testing.B) { benchmarkSave(b, benchResources) }

// BenchmarkSave1k is the same for a state of 1,000 resources, for scale.
func BenchmarkSave1k(b *testing.B) { benchmarkSave(b, 1000) }

func benchmarkSave(b *testing.B, n int) {
	f, path := openBench(b, n, Options{})
	addr := conversationAddr("customer-000042")
	i := 0
	for b.Loop() {
		i++
		if err := f.Update(func(s *State) error {
			s.Get(addr).Applied[resource.FieldFriendlyName] = fmt.Sprint("name ", i)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportFileSize(b, path)
}

// BenchmarkCreate100k is the journal traffic of one create as the applier
// records it (the pending intent, then the resource in its place) in a state
// of 100,000 resources: two fsynced lines.
func BenchmarkCreate100k(b *testing.B) {
	f, _ := openBench(b, benchResources, Options{})
	i := 0
	for b.Loop() {
		i++
		addr := conversationAddr(fmt.Sprintf("new-%06d", i))
		if err := f.Update(func(s *State) error {
			s.AddPending(&Pending{Address: addr, ParentSID: testServiceSID, StartedAt: testTime,
				Values: resource.Values{resource.FieldUniqueName: addr.Name}})
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		if err := f.Update(func(s *State) error {
			s.RemovePending(addr)
			s.Put(testConversation(addr.Name, benchResources+i))
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdateNoChange100k is the cost of an Update that changes nothing:
// nothing is copied, compared or written.
func BenchmarkUpdateNoChange100k(b *testing.B) {
	f, _ := openBench(b, benchResources, Options{})
	addr := conversationAddr("customer-000042")
	for b.Loop() {
		if err := f.Update(func(s *State) error { _ = s.Get(addr); return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompact100k is the cost of writing a 100,000-resource state file in
// full and emptying the journal, as every DefaultCompactEvery changes and on
// Close.
func BenchmarkCompact100k(b *testing.B) {
	f, path := openBench(b, benchResources, Options{})
	for b.Loop() {
		f.saveMu.Lock()
		err := f.compact(true)
		f.saveMu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportFileSize(b, path)
}

// BenchmarkOpen100k is the cost of opening (locking, reading, strictly
// decoding) a 100,000-resource state file with an empty journal, as after a
// clean Close.
func BenchmarkOpen100k(b *testing.B) {
	path := writeBench(b, benchResources)
	for b.Loop() {
		f, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		_ = f.Close()
	}
}

// BenchmarkOpenReadOnly100kJournal10k is opening a 100,000-resource state
// whose journal holds a full DefaultCompactEvery changes (the most it holds
// while a writer runs): what a plan run alongside an apply pays.
func BenchmarkOpenReadOnly100kJournal10k(b *testing.B) {
	f, path := openBench(b, benchResources, Options{CompactEvery: 1 << 30})
	for i := range DefaultCompactEvery {
		addr := conversationAddr(fmt.Sprintf("customer-%06d", i))
		if err := f.Update(func(s *State) error {
			s.Get(addr).Applied[resource.FieldFriendlyName] = fmt.Sprint("renamed ", i)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		r, err := Open(path, Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		if r.Serial() != 1+DefaultCompactEvery {
			b.Fatalf("serial %d", r.Serial())
		}
		_ = r.Close()
	}
	b.StopTimer()
	if info, err := os.Stat(path + ".journal"); err == nil {
		b.ReportMetric(float64(info.Size())/(1<<20), "MiB/journal")
	}
}

// BenchmarkStateCopy100k is what File.State costs at 100,000 resources (a
// deep copy), against View, which lends the state without copying.
func BenchmarkStateCopy100k(b *testing.B) {
	f, _ := openBench(b, benchResources, Options{})
	b.Run("State", func(b *testing.B) {
		for b.Loop() {
			_ = f.State()
		}
	})
	b.Run("View", func(b *testing.B) {
		for b.Loop() {
			f.View(func(s *State) { _ = s.Resources["conversation.customer-000042"] })
		}
	})
}
