package main

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// checkModulePath reports why path cannot be the module path of a main
// module, by the rules the go command applies to one (`go mod init`, `go mod
// edit -module`): slash-separated elements of ASCII letters, digits and
// "-._~+", none empty, "." or "..", none beginning or ending with a dot, none
// a name Windows reserves, no leading dash. It returns nil for a valid path.
func checkModulePath(path string) error {
	switch {
	case path == "":
		return fmt.Errorf("empty module path")
	case !utf8.ValidString(path):
		return fmt.Errorf("module path %q: invalid UTF-8", path)
	case path[0] == '-':
		return fmt.Errorf("module path %q: leading dash", path)
	case path[0] == '/':
		return fmt.Errorf("module path %q: leading slash", path)
	case path[len(path)-1] == '/':
		return fmt.Errorf("module path %q: trailing slash", path)
	}
	for elem := range strings.SplitSeq(path, "/") {
		if err := checkPathElem(elem); err != nil {
			return fmt.Errorf("module path %q: %w", path, err)
		}
	}
	return nil
}

// windowsReserved are the file names Windows refuses, with or without an
// extension; the go command refuses them as path elements.
var windowsReserved = []string{
	"CON", "PRN", "AUX", "NUL",
	"COM0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
	"LPT0", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
}

func checkPathElem(elem string) error {
	if elem == "" {
		return fmt.Errorf("empty path element")
	}
	if strings.Trim(elem, ".") == "" {
		return fmt.Errorf("invalid path element %q", elem)
	}
	if elem[0] == '.' || elem[len(elem)-1] == '.' {
		return fmt.Errorf("path element %q begins or ends with a dot", elem)
	}
	for _, r := range elem {
		if !isPathRune(r) {
			return fmt.Errorf("invalid character %q in path element %q", r, elem)
		}
	}
	short, _, _ := strings.Cut(elem, ".")
	for _, bad := range windowsReserved {
		if strings.EqualFold(short, bad) {
			return fmt.Errorf("path element %q is a name Windows reserves", elem)
		}
	}
	if i := strings.LastIndexByte(short, '~'); i >= 0 && i < len(short)-1 && strings.Trim(short[i+1:], "0123456789") == "" {
		return fmt.Errorf("path element %q ends in a tilde and digits (a Windows short name)", elem)
	}
	return nil
}

// isPathRune reports whether r may appear in an element of an import path.
func isPathRune(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
		r == '-' || r == '.' || r == '_' || r == '~' || r == '+'
}
