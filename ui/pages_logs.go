package ui

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/internal/logtimes"
	"github.com/kilnhq/kiln/store"
)

// The log page shows a try's log in pre#log. A try that is still running
// is followed: the page renders the log as it is, and kiln.js appends what
// the API's event stream (GET .../logs?follow=1) sends from the byte
// offset where the rendered text ends, until the stream's end event. A log
// larger than maxPageLog shows only its end; the download link has it
// whole.

// maxPageLog bounds the log text one page holds; kiln.js keeps a followed
// log to the same size.
const maxPageLog = 2 << 20

// logPageRoutes registers the log page.
func (s *Server) logPageRoutes() {
	s.page(http.MethodGet, "/dags/:dag/runs/:run/tasks/:task/logs", s.logPage, RoleViewer)
}

// tryLink is one try in the log page's try selector.
type tryLink struct {
	Number int
	State  string
	Href   string
	On     bool
}

// logView is the log page; TaskID is the instance key, TASK[i] for an
// instance of a mapped task.
type logView struct {
	DAGID, RunID, TaskID string
	DAGHref, RunsHref    string
	RunHref              string
	TaskHref             string // the run page with the task picked
	Try                  int
	State                string // the try's state; "" when it is not recorded
	Worker, Error        string
	Tries                []tryLink
	Text                 string
	// Size is the log's size; Shown how much of its end Text holds, less
	// than Size for a log over maxPageLog.
	Size, Shown         int64
	SizeText, ShownText string
	Cut                 bool
	// Follow is the event stream to follow a running try's log from where
	// Text ends; "" for a try that has ended.
	Follow       string
	MaxBytes     int
	DownloadHref string
	DownloadName string
	// Stamped shows each line's receive time (?timestamps=1); StampHref
	// is the page with the times toggled.
	Stamped   bool
	StampHref string
}

func (s *Server) logPage(c echo.Context) error {
	k, err := s.lookupTry(c)
	if err != nil {
		return err
	}
	st := s.backend.Store()
	// Ask before reading: a try that had ended then has its whole log in
	// the file by the time it is read.
	finished := s.backend.TryFinished(k)
	run := runHref(k.DAGID, k.RunID)
	// k.TaskID is an instance key: an instance of a mapped task is named
	// by its task and map_index in the links.
	taskID, idx, ok := store.SplitInstanceKey(k.TaskID)
	if !ok {
		taskID, idx = k.TaskID, store.NoMapIndex
	}
	instance := ""
	if idx >= 0 {
		instance = "map_index=" + strconv.Itoa(idx) + "&"
	}
	api := "/api/v1/dags/" + url.PathEscape(k.DAGID) + "/runs/" + url.PathEscape(k.RunID) +
		"/tasks/" + url.PathEscape(taskID) + "/logs?" + instance + "try=" + strconv.Itoa(k.Try)
	v := logView{
		DAGID:        k.DAGID,
		RunID:        k.RunID,
		TaskID:       k.TaskID,
		DAGHref:      dagHref(k.DAGID),
		RunsHref:     dagHref(k.DAGID, "runs"),
		RunHref:      run,
		TaskHref:     taskPageHref(run, taskID, idx),
		Try:          k.Try,
		MaxBytes:     maxPageLog,
		DownloadHref: api + "&download=1",
		DownloadName: logFileName(k),
	}
	tries, err := st.Tries(k.DAGID, k.RunID, k.TaskID)
	if err != nil {
		return err
	}
	latest := k.Try
	for _, tr := range tries {
		latest = max(latest, tr.Number)
		if tr.Number == k.Try {
			v.State, v.Worker, v.Error = string(tr.State), tr.Worker, tr.Error
		}
	}
	if ti, err := st.GetTaskInstance(k.DAGID, k.RunID, k.TaskID); err == nil {
		latest = max(latest, ti.TryNumber)
	}
	states := map[int]store.TaskState{}
	for _, tr := range tries {
		states[tr.Number] = tr.State
	}
	base := run + "/tasks/" + url.PathEscape(taskID) + "/logs?" + instance + "try="
	for n := 1; n <= latest; n++ {
		v.Tries = append(v.Tries, tryLink{Number: n, State: string(states[n]), Href: base + strconv.Itoa(n), On: n == k.Try})
	}

	if v.Stamped, err = queryBool(c, "timestamps"); err != nil {
		return err
	}
	self := base + strconv.Itoa(k.Try)
	if v.Stamped {
		v.StampHref = self
	} else {
		v.StampHref = self + "&timestamps=1"
	}
	tail, err := readLogTail(s.backend.LogPath(k), maxPageLog, !finished, v.Stamped)
	if err != nil {
		return err
	}
	v.Text, v.Size, v.Shown, v.Cut = tail.text, tail.size, tail.end-tail.begin, tail.begin > 0
	v.SizeText, v.ShownText = humanize.IBytes(uint64(tail.size)), humanize.IBytes(uint64(tail.end-tail.begin))
	if !finished {
		v.Follow = api + "&follow=1&offset=" + strconv.FormatInt(tail.end, 10)
		if v.Stamped {
			v.Follow += "&timestamps=1"
		}
	}
	title := fmt.Sprintf("%s · try %d", k.TaskID, k.Try)
	return s.render(c, http.StatusOK, "log", pageData{Title: title, Nav: "dags", Data: v})
}

// logTail is the end of a log file: text holds bytes begin to end of a
// file of size bytes.
type logTail struct {
	text             string
	begin, end, size int64
}

// readLogTail reads at most limit bytes from the end of a log file. A cut
// log starts after the first newline it reads, so that it starts with a
// whole line. A log still being written (partial) holds back a trailing
// partial UTF-8 character or "\r", as the event stream does, so that
// following it from end loses nothing. Line ends are "\n", as the stream
// sends them. A missing file is an empty log. Stamped, each line starts
// with its receive time (internal/logtimes); begin and end stay offsets
// in the file.
func readLogTail(path string, limit int64, partial, stamped bool) (logTail, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return logTail{}, nil
	}
	if err != nil {
		return logTail{}, fmt.Errorf("reading the log: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return logTail{}, fmt.Errorf("reading the log: %w", err)
	}
	t := logTail{size: fi.Size()}
	t.begin = max(t.size-limit, 0)
	buf := make([]byte, t.size-t.begin)
	if _, err := io.ReadFull(io.NewSectionReader(f, t.begin, int64(len(buf))), buf); err != nil {
		return logTail{}, fmt.Errorf("reading the log: %w", err)
	}
	if t.begin > 0 {
		if i := bytes.IndexByte(buf, '\n'); i >= 0 && i < len(buf)-1 {
			buf = buf[i+1:]
			t.begin += int64(i + 1)
		}
	}
	n := len(buf)
	if partial {
		n = completePrefix(buf)
	}
	t.end = t.begin + int64(n)
	if stamped {
		ix, err := logtimes.Open(path)
		if err != nil {
			return logTail{}, err
		}
		buf = logtimes.NewStamper(ix, atLineStart(f, t.begin)).Stamp(nil, buf[:n], t.begin)
		n = len(buf)
	}
	t.text = strings.ReplaceAll(string(buf[:n]), "\r\n", "\n")
	t.text = strings.ReplaceAll(t.text, "\r", "\n")
	return t, nil
}
