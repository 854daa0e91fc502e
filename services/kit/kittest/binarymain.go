package kittest

import "testing"

// Run runs the tests of m, then removes the built command, and returns
// m.Run's exit code: a package's TestMain is
//
//	func TestMain(m *testing.M) { os.Exit(nodeBin.Run(m)) }
func (b *Binary) Run(m *testing.M) int {
	code := m.Run()
	b.Remove()
	return code
}
