package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// rewriter renames a module: it replaces the module path from with to in
// the module's files, and the import paths of its packages (from/...) with
// the same paths under to.
type rewriter struct {
	from, to string
}

// inModule reports whether path is the import path of a package of the
// module being renamed.
func (r rewriter) inModule(path string) bool {
	return path == r.from || strings.HasPrefix(path, r.from+"/")
}

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// goFile rewrites src, the Go source file name: every string literal whose
// value is an import path of the module (import declarations, and any other
// literal that is exactly such a path) and every mention of the module in
// comments (see text), its imports sorted again as gofmt sorts them.
func (r rewriter) goFile(name string, src []byte) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	file := fset.File(f.Pos())
	var edits []edit
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		v, err := strconv.Unquote(lit.Value)
		if err != nil || !r.inModule(v) {
			return true
		}
		edits = append(edits, edit{
			start: file.Offset(lit.Pos()),
			end:   file.Offset(lit.End()),
			text:  strconv.Quote(r.to + strings.TrimPrefix(v, r.from)),
		})
		return true
	})
	for _, group := range f.Comments {
		for _, c := range group.List {
			start, end := file.Offset(c.Pos()), file.Offset(c.End())
			if out := r.text(src[start:end]); !bytes.Equal(out, src[start:end]) {
				edits = append(edits, edit{start: start, end: end, text: string(out)})
			}
		}
	}
	if len(edits) == 0 {
		return src, nil
	}
	// A renamed import may belong elsewhere in its sorted group: format
	// sorts it there, and leaves the rest of a gofmt-ed file as it was.
	out, err := format.Source(apply(src, edits))
	if err != nil {
		return nil, fmt.Errorf("format %s: %w", name, err)
	}
	return out, nil
}

// apply returns src with the edits made; edits do not overlap.
func apply(src []byte, edits []edit) []byte {
	if len(edits) == 0 {
		return src
	}
	slices.SortFunc(edits, func(a, b edit) int { return a.start - b.start })
	out := make([]byte, 0, len(src))
	last := 0
	for _, e := range edits {
		out = append(out, src[last:e.start]...)
		out = append(out, e.text...)
		last = e.end
	}
	return append(out, src[last:]...)
}

// text rewrites the mentions of the module in src, any text: the module
// path standing on its own or followed by "/" and a package path. A longer
// path that only begins like it (from-extra, from.v2, a/from) is not a
// mention and is kept, as is a mention ending a sentence ("from.").
func (r rewriter) text(src []byte) []byte {
	from := []byte(r.from)
	var out []byte
	last := 0
	for i := 0; i < len(src); {
		j := bytes.Index(src[i:], from)
		if j < 0 {
			break
		}
		start, end := i+j, i+j+len(from)
		if !isMention(src, start, end) {
			i = start + 1
			continue
		}
		out = append(out, src[last:start]...)
		out = append(out, r.to...)
		last, i = end, end
	}
	if out == nil {
		return src
	}
	return append(out, src[last:]...)
}

// isMention reports whether src[start:end], an occurrence of the module
// path, is the whole path or its beginning followed by a package path.
func isMention(src []byte, start, end int) bool {
	if start > 0 {
		if b := src[start-1]; b == '/' || isPathRune(rune(b)) {
			return false
		}
	}
	if end == len(src) {
		return true
	}
	switch b := src[end]; b {
	case '/':
		return true
	case '.':
		return end+1 == len(src) || !isPathRune(rune(src[end+1]))
	default:
		return !isPathRune(rune(b))
	}
}

// isText reports whether data looks like text: valid UTF-8 without NUL
// bytes. Other files are copied unchanged.
func isText(data []byte) bool {
	return bytes.IndexByte(data, 0) < 0 && utf8.Valid(data)
}
