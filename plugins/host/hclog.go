package host

import (
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// hclogger hands go-plugin's logging, including the log lines of the plugin
// processes, to slog at debug level: none of it is the worker's business
// unless it is debugging plugins.
type hclogger struct {
	l    *slog.Logger
	name string
	args []any
}

var _ hclog.Logger = (*hclogger)(nil)

func newHCLogger(l *slog.Logger) hclog.Logger { return &hclogger{l: l} }

func (h *hclogger) enabled() bool { return h.l.Enabled(context.Background(), slog.LevelDebug) }

func (h *hclogger) Log(level hclog.Level, msg string, args ...any) {
	if level < hclog.Debug || !h.enabled() {
		return
	}
	attrs := make([]any, 0, 4+len(h.args)+len(args))
	if h.name != "" {
		attrs = append(attrs, "logger", h.name)
	}
	attrs = append(attrs, "plugin_level", level.String())
	attrs = append(attrs, h.args...)
	attrs = append(attrs, args...)
	h.l.Debug(msg, attrs...)
}

func (h *hclogger) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hclogger) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hclogger) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hclogger) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hclogger) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *hclogger) IsTrace() bool { return false }
func (h *hclogger) IsDebug() bool { return h.enabled() }
func (h *hclogger) IsInfo() bool  { return h.enabled() }
func (h *hclogger) IsWarn() bool  { return h.enabled() }
func (h *hclogger) IsError() bool { return h.enabled() }

func (h *hclogger) ImpliedArgs() []any { return h.args }

func (h *hclogger) With(args ...any) hclog.Logger {
	c := *h
	c.args = append(append([]any(nil), h.args...), args...)
	return &c
}

func (h *hclogger) Name() string { return h.name }

func (h *hclogger) Named(name string) hclog.Logger {
	c := *h
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	return &c
}

func (h *hclogger) ResetNamed(name string) hclog.Logger {
	c := *h
	c.name = name
	return &c
}

func (h *hclogger) SetLevel(hclog.Level) {}

// GetLevel says Off when debug logging is off, which lets go-plugin skip
// parsing the plugin's log lines altogether.
func (h *hclogger) GetLevel() hclog.Level {
	if !h.enabled() {
		return hclog.Off
	}
	return hclog.Debug
}

func (h *hclogger) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(h.l.Handler(), slog.LevelDebug)
}

func (h *hclogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return h.StandardLogger(opts).Writer()
}
