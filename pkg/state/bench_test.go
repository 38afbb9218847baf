package state

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/convsync/convsync/pkg/resource"
)

const benchResources = 100_000

// openBench opens a state file holding n conversations, as after a big apply.
func openBench(b *testing.B, n int) (*File, string) {
	b.Helper()
	path := filepath.Join(b.TempDir(), DefaultPath)
	f, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Close() })
	if err := f.Update(func(s *State) error {
		for i := range n {
			s.Put(testConversation(fmt.Sprintf("customer-%06d", i), i+1))
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	return f, path
}

func reportFileSize(b *testing.B, path string) {
	if info, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(info.Size())/(1<<20), "MiB/file")
	}
}

// BenchmarkSave100k is the cost of one recorded change (one Update that
// changes one resource: copy, compare, encode, fsync, rename) in a state of
// 100,000 resources.
func BenchmarkSave100k(b *testing.B) { benchmarkSave(b, benchResources) }

// BenchmarkSave1k is the same for a state of 1,000 resources, for scale.
func BenchmarkSave1k(b *testing.B) { benchmarkSave(b, 1000) }

func benchmarkSave(b *testing.B, n int) {
	f, path := openBench(b, n)
	addr := conversationAddr("customer-000042")
	b.ResetTimer()
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

// BenchmarkUpdateNoChange100k is the cost of an Update that changes nothing
// (copy and compare only; nothing is written).
func BenchmarkUpdateNoChange100k(b *testing.B) {
	f, _ := openBench(b, benchResources)
	b.ResetTimer()
	for b.Loop() {
		if err := f.Update(func(*State) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen100k is the cost of opening (locking, reading, strictly
// decoding) a 100,000-resource state file.
func BenchmarkOpen100k(b *testing.B) {
	first, path := openBench(b, benchResources)
	if err := first.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		f, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		_ = f.Close()
	}
}
