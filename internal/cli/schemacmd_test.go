package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// convsync schema prints exactly the shipped schema file, which the
// editors' modelines point at.
func TestSchemaCommandPrintsTheShippedSchema(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := New(strings.NewReader(""), &stdout, &stderr, func(string) string { return "" }).RunContext(context.Background(), []string{"schema"})
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want, err := os.ReadFile("../../schema/convsync.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stdout.Bytes(), want) {
		t.Errorf("convsync schema differs from schema/convsync.schema.json; regenerate it with: go run ./cmd/convsync schema > schema/convsync.schema.json")
	}
}
