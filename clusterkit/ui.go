package clusterkit

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"clusterkit.dev/clusterkit/ui"
)

// uiHandler serves the cluster page (package ui) under /ui/.
func uiHandler() echo.HandlerFunc {
	return echo.WrapHandler(http.StripPrefix("/ui/", http.FileServer(http.FS(ui.Files))))
}
