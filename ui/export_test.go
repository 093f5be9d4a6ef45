package ui

import "time"

// SetKeepAlive sets how often a stream with nothing new sends a comment.
func (s *Server) SetKeepAlive(d time.Duration) { s.keepAlive = d }
