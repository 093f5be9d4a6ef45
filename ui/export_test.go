package ui

import "time"

// SetKeepAlive sets how often a stream with nothing new sends a comment.
func (s *Server) SetKeepAlive(d time.Duration) { s.keepAlive = d }

// SetLogPoll sets how often a followed log's file is read although nothing
// said it changed.
func (s *Server) SetLogPoll(d time.Duration) { s.logPoll = d }
