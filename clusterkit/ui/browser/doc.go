// Package browser holds the test that loads the cluster page (package ui)
// in headless Chromium against a running cluster. It has no code of its
// own: it is a package apart so that the browser driver the test needs is
// not a test dependency of the packages applications import.
package browser
