package ui

import (
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/internal/logtimes"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

func (s *Server) listTaskInstances(c echo.Context) error {
	run, err := s.lookupRun(c)
	if err != nil {
		return err
	}
	st := s.backend.Store()
	tis, err := st.TaskInstances(run.DAGID, run.RunID)
	if err != nil {
		return err
	}
	s.sortTaskInstances(run.DAGID, tis)
	out := make([]TaskInstance, len(tis))
	for i, ti := range tis {
		tries, err := st.Tries(ti.DAGID, ti.RunID, ti.Key())
		if err != nil {
			return err
		}
		out[i] = NewTaskInstance(ti, tries)
	}
	return c.JSON(http.StatusOK, out)
}

// getTask answers GET …/tasks/{task}: one task instance with its tries,
// with ?map_index=N an instance of a mapped task.
func (s *Server) getTask(c echo.Context) error {
	run, ti, err := s.lookupTask(c)
	if err != nil {
		return err
	}
	tries, err := s.backend.Store().Tries(run.DAGID, run.RunID, ti.Key())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, NewTaskInstance(ti, tries))
}

// NewTaskInstance is task instance ti with its tries as the API shows it.
func NewTaskInstance(ti *store.TaskInstance, tries []*store.Try) TaskInstance {
	v := TaskInstance{
		DAGID:       ti.DAGID,
		RunID:       ti.RunID,
		TaskID:      ti.TaskID,
		MapIndex:    ti.MapIndex,
		MapLength:   ti.MapLength,
		Item:        ti.Item,
		State:       ti.State,
		TryNumber:   ti.TryNumber,
		MaxTries:    ti.MaxTries,
		Queue:       ti.Queue,
		Pool:        ti.Pool,
		PoolSlots:   ti.PoolSlots,
		Priority:    ti.Priority,
		NotBefore:   utcOrNil(ti.NotBefore),
		QueuedAt:    utc(ti.QueuedAt),
		StartDate:   utc(ti.StartDate),
		EndDate:     utc(ti.EndDate),
		DurationS:   durationS(ti.StartDate, ti.EndDate),
		Worker:      ti.Worker,
		Error:       ti.Error,
		Outputs:     ti.Outputs,
		CacheResult: NewCacheResult(ti.CachedFrom),
		Artifacts:   ArtifactViews(ti.Artifacts),
		Tries:       make([]Try, len(tries)),
	}
	if v.Outputs == nil {
		v.Outputs = map[string]any{}
	}
	for i, t := range tries {
		v.Tries[i] = NewTry(t)
	}
	return v
}

// NewTry is try t as the API shows it.
func NewTry(t *store.Try) Try {
	return Try{
		TryNumber:   t.Number,
		State:       t.State,
		Worker:      t.Worker,
		QueuedAt:    utcOrNil(t.QueuedAt),
		StartDate:   utc(t.StartDate),
		EndDate:     utc(t.EndDate),
		DurationS:   durationS(t.StartDate, t.EndDate),
		ExitCode:    t.ExitCode,
		Error:       t.Error,
		CacheResult: NewCacheResult(t.CachedFrom),
		Artifacts:   ArtifactViews(t.Artifacts),
	}
}

// taskLogs answers a try's log: as text/plain, or with ?follow=1 as
// Server-Sent Events that last until the try ends (see followLog).
func (s *Server) taskLogs(c echo.Context) error {
	k, err := s.lookupTry(c)
	if err != nil {
		return err
	}
	follow := false
	if f := c.QueryParam("follow"); f != "" {
		if follow, err = strconv.ParseBool(f); err != nil {
			return badRequest("follow: want 1 or 0, got %q", f)
		}
	}
	stamped, err := queryBool(c, "timestamps")
	if err != nil {
		return err
	}
	if follow {
		return s.followLog(c, k, stamped)
	}
	if c.QueryParam("tail") != "" {
		n, err := queryInt(c, "tail", logTailLines, 1, maxTailLines)
		if err != nil {
			return err
		}
		text, err := readLogLines(s.backend.LogPath(k), n, logTailBytes)
		if err != nil {
			return err
		}
		return c.String(http.StatusOK, text)
	}
	offset, err := logOffset(c)
	if err != nil {
		return err
	}
	path := s.backend.LogPath(k)
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	if d := c.QueryParam("download"); d != "" {
		download, err := strconv.ParseBool(d)
		if err != nil {
			return badRequest("download: want 1 or 0, got %q", d)
		}
		if download {
			h.Set(echo.HeaderContentDisposition, mime.FormatMediaType("attachment", map[string]string{"filename": logFileName(k)}))
		}
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return c.NoContent(http.StatusOK) // the try has not logged anything yet
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	// ServeContent streams from the file (and serves Range requests), so a
	// big log is never held in memory; ?offset=N serves it from byte N.
	from := min(offset, st.Size())
	if stamped {
		return s.writeStampedLog(c, path, f, from, st.Size())
	}
	http.ServeContent(c.Response(), c.Request(), "", time.Time{}, io.NewSectionReader(f, from, st.Size()-from))
	return nil
}

// writeStampedLog answers bytes from to end of a log with each line's
// receive time before it (?timestamps=1), a piece at a time.
func (s *Server) writeStampedLog(c echo.Context, path string, f *os.File, from, end int64) error {
	ix, err := logtimes.Open(path)
	if err != nil {
		return err
	}
	stamp := logtimes.NewStamper(ix, atLineStart(f, from))
	resp := c.Response()
	resp.WriteHeader(http.StatusOK)
	buf, out := make([]byte, 32<<10), make([]byte, 0, 40<<10)
	for off := from; off < end; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
		if n > 0 {
			out = stamp.Stamp(out[:0], buf[:n], off)
			if _, werr := resp.Write(out); werr != nil {
				return nil // the client left
			}
			off += int64(n)
		}
		if err != nil && err != io.EOF {
			s.log.Error("reading a log", "path", path, "err", err)
			return nil // the status is sent already
		}
		if n == 0 {
			break
		}
	}
	return nil
}

// atLineStart says the byte at off of a log starts a line.
func atLineStart(f *os.File, off int64) bool {
	if off == 0 {
		return true
	}
	var b [1]byte
	_, err := f.ReadAt(b[:], off-1)
	return err == nil && b[0] == '\n'
}

// queryBool reads an optional flag of the query: 1/0, true/false.
func queryBool(c echo.Context, name string) (bool, error) {
	q := c.QueryParam(name)
	if q == "" {
		return false, nil
	}
	v, err := strconv.ParseBool(q)
	if err != nil {
		return false, badRequest("%s: want 1 or 0, got %q", name, q)
	}
	return v, nil
}

// logFileName is the name a downloaded log is saved as:
// DAG_RUN_TASK_TRY.log, with the characters file systems dislike (the
// colons of run ids) replaced.
func logFileName(k wire.TryKey) string {
	name := fmt.Sprintf("%s_%s_%s_%d.log", k.DAGID, k.RunID, k.TaskID, k.Try)
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || strings.ContainsRune(`:/\?*"<>|`, r) {
			return '-'
		}
		return r
	}, name)
}

// lookupTry returns the try the request names: {dag}, {run}, {task} (with
// ?map_index=N, instance N of that mapped task) and ?try=N, by default the
// latest. Every unknown part is a 404 error.
func (s *Server) lookupTry(c echo.Context) (wire.TryKey, error) {
	run, err := s.lookupRun(c)
	if err != nil {
		return wire.TryKey{}, err
	}
	taskID, err := pathParam(c, "task")
	if err != nil {
		return wire.TryKey{}, err
	}
	key, err := s.instanceKey(c, run, taskID)
	if err != nil {
		return wire.TryKey{}, err
	}
	st := s.backend.Store()
	tries, err := st.Tries(run.DAGID, run.RunID, key)
	if err != nil {
		return wire.TryKey{}, err
	}
	// The instance counts its current try, which may not be recorded yet.
	// Callback stages (TASK.on_failure.1, ...) have tries but no instance.
	latest := 0
	notTried := fmt.Sprintf("task %q of run %q has not been tried yet", key, run.RunID)
	ti, err := st.GetTaskInstance(run.DAGID, run.RunID, key)
	switch {
	case err == nil:
		latest, notTried = ti.TryNumber, notTriedText(run.RunID, ti)
	case errors.Is(err, store.ErrNotFound) && len(tries) > 0:
	case errors.Is(err, store.ErrNotFound):
		tis, err := st.TaskInstances(run.DAGID, run.RunID)
		if err != nil {
			return wire.TryKey{}, err
		}
		return wire.TryKey{}, s.taskNotFound(run, key, tis)
	default:
		return wire.TryKey{}, err
	}
	for _, t := range tries {
		latest = max(latest, t.Number)
	}
	n, err := queryInt(c, "try", latest, 1, math.MaxInt32)
	if err != nil {
		return wire.TryKey{}, err
	}
	switch {
	case latest == 0:
		return wire.TryKey{}, notFound("%s", notTried)
	case n > latest:
		return wire.TryKey{}, notFound("try %d of task %q not found: it has %d", n, key, latest)
	}
	return wire.TryKey{DAGID: run.DAGID, RunID: run.RunID, TaskID: key, Try: n}, nil
}
