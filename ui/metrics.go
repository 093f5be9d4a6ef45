package ui

import (
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newMetricsHandler serves what g gathers in the Prometheus text format
// (OpenMetrics when the scraper asks for it); nil when there is nothing to
// gather. A collector that fails is logged and left out of the answer
// rather than failing the whole scrape.
func newMetricsHandler(g prometheus.Gatherer, log *slog.Logger) http.Handler {
	if g == nil {
		return nil
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

// serveMetrics answers GET /metrics. Like /healthz it needs no
// authentication, so that a monitoring system scrapes it without a token:
// it tells counts and timings, and names no DAG, run or task (only worker
// queues and pools).
func (s *Server) serveMetrics(c echo.Context) error {
	if s.metrics == nil {
		return notFound("metrics are not enabled on this server")
	}
	s.metrics.ServeHTTP(c.Response(), c.Request())
	return nil
}
