package jwks_test

import (
	"os"
	"testing"
)

var tempDir string

// TestMain owns the folder of the binary-wide fixture keyset.
func TestMain(m *testing.M) {
	var err error
	if tempDir, err = os.MkdirTemp("", "ofmkeys-jwks-test-"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(tempDir)
	os.Exit(code)
}

func osMkdirTemp() (string, error) { return tempDir, nil }
