// Package ui holds the cluster page that every node serves under /ui/:
// plain HTML, CSS and JavaScript, embedded in the binary. The page reads
// GET /cluster and follows it with the long-poll (If-None-Match and
// ?wait=), so it needs no other route and no build step.
package ui

import "embed"

// Files are the page's files: index.html, ui.css and ui.js.
//
//go:embed index.html ui.css ui.js
var Files embed.FS
