package ui

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/suggest"
	"github.com/kilnhq/kiln/store"
)

// The artifacts and task cache routes (docs/api.md#artifacts): a run's
// artifacts, one streamed out of the artifact store, the task cache's
// entries, and garbage collection.

// listRunArtifacts answers GET /api/v1/dags/{dag}/runs/{run}/artifacts:
// the artifacts of the run's task instances, in the DAG's task order;
// ?task= keeps to one task (with the instances of a mapped one).
func (s *Server) listRunArtifacts(c echo.Context) error {
	run, err := s.lookupRun(c)
	if err != nil {
		return err
	}
	tis, err := s.backend.Store().TaskInstances(run.DAGID, run.RunID)
	if err != nil {
		return err
	}
	s.sortTaskInstances(run.DAGID, tis)
	if task := c.QueryParam("task"); task != "" {
		i := slices.IndexFunc(tis, func(ti *store.TaskInstance) bool { return ti.TaskID == task })
		if i < 0 {
			return s.taskNotFound(run, task, tis)
		}
		j := i + 1
		for j < len(tis) && tis[j].TaskID == task {
			j++
		}
		tis = tis[i:j]
	}
	out := []RunArtifact{}
	for _, ti := range tis {
		for _, a := range ArtifactViews(ti.Artifacts) {
			out = append(out, RunArtifact{TaskID: ti.TaskID, MapIndex: ti.MapIndex, TryNumber: ti.TryNumber, Artifact: a, CachedFrom: ti.CachedFrom})
		}
	}
	return c.JSON(http.StatusOK, out)
}

// getArtifact answers GET …/tasks/{task}/artifacts/{name}: the artifact's
// content, streamed from the artifact store, with its SHA-256 as ETag.
// The content is checked against its SHA-256 as it goes; when it does not
// match, the answer is cut short of its Content-Length, so that no client
// takes it for whole.
func (s *Server) getArtifact(c echo.Context) error {
	run, ti, err := s.lookupTask(c)
	if err != nil {
		return err
	}
	name, err := pathParam(c, "name")
	if err != nil {
		return err
	}
	i := slices.IndexFunc(ti.Artifacts, func(a store.Artifact) bool { return a.Name == name })
	if i < 0 {
		return noSuchArtifact(ti, name)
	}
	a := ti.Artifacts[i]
	etag := `"` + a.SHA256 + `"`
	h := c.Response().Header()
	h.Set("ETag", etag)
	if etagMatch(c.Request().Header.Get("If-None-Match"), etag) {
		return c.NoContent(http.StatusNotModified)
	}
	rc, info, err := s.backend.OpenArtifact(c.Request().Context(), a.SHA256)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("artifact %s (sha256 %s) of task %q is no longer stored: collected by retention (docs/artifacts.md#retention)", a.Name, a.SHA256, ti.Key())
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	mediaType := a.MediaType
	if mediaType == "" {
		mediaType = "application/octet-stream"
	}
	h.Set(echo.HeaderContentType, mediaType)
	h.Set(echo.HeaderContentLength, strconv.FormatUint(info.Size, 10))
	h.Set(echo.HeaderContentDisposition, mime.FormatMediaType("attachment", map[string]string{"filename": artifactFileName(a)}))
	h.Set("X-Content-Type-Options", "nosniff")
	c.Response().WriteHeader(http.StatusOK)
	c.Response().Flush() // the client learns the size before the first chunk comes
	if err := copyVerified(c.Response(), rc, a.SHA256); err != nil {
		s.log.Error("sending an artifact", "dag", run.DAGID, "run", run.RunID, "task", ti.Key(), "artifact", a.Name, "sha256", a.SHA256, "err", err)
		// Cut the answer short: the client sees fewer bytes than
		// Content-Length said, not a whole file that is wrong.
		panic(http.ErrAbortHandler)
	}
	return nil
}

// noSuchArtifact is the 404 of an artifact name the task instance does
// not have, naming those it has.
func noSuchArtifact(ti *store.TaskInstance, name string) error {
	if len(ti.Artifacts) == 0 {
		return notFound("task %q of run %q has no artifact %q: it stored none", ti.Key(), ti.RunID, name)
	}
	names := make([]string, len(ti.Artifacts))
	for i, a := range ti.Artifacts {
		names[i] = a.Name
	}
	return notFound("task %q of run %q has no artifact %q%s; it has %s", ti.Key(), ti.RunID, name,
		suggest.DidYouMean(name, names), strings.Join(names, ", "))
}

// etagMatch reports whether an If-None-Match header names etag.
func etagMatch(header, etag string) bool {
	for tag := range strings.SplitSeq(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == etag || tag == "*" {
			return true
		}
	}
	return false
}

// artifactFileName is the name a downloaded artifact is saved as: the
// base name of its path, with .tar after a folder's.
func artifactFileName(a store.Artifact) string {
	name := path.Base(a.Path)
	if name == "." || name == "/" {
		name = a.Name
	}
	if a.Dir {
		name += ".tar"
	}
	return name
}

// copyChunk is how much of an artifact is read at a time.
const copyChunk = 128 << 10

// copyVerified copies r to w and checks that what it copied has the
// SHA-256 sha. It holds back the last piece it read until r ends, and
// writes it only if the hash matches, so that w never gets a whole
// content that is wrong.
func copyVerified(w io.Writer, r io.Reader, sha string) error {
	sum := sha256.New()
	held, buf := make([]byte, 0, copyChunk), make([]byte, copyChunk)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if len(held) > 0 {
				if _, werr := w.Write(held); werr != nil {
					return werr
				}
			}
			sum.Write(buf[:n])
			held, buf = buf[:n], held[:cap(held)]
		}
		if errors.Is(err, io.EOF) {
			return finishVerified(w, held, sum, sha)
		}
		if err != nil {
			return fmt.Errorf("reading from the artifact store: %w", err)
		}
	}
}

func finishVerified(w io.Writer, held []byte, sum hash.Hash, sha string) error {
	if got := hex.EncodeToString(sum.Sum(nil)); got != sha {
		return fmt.Errorf("the stored content has SHA-256 %s, not %s: the object is corrupt", got, sha)
	}
	_, err := w.Write(held)
	return err
}

// listCache answers GET /api/v1/cache: the task cache's entries, newest
// first; ?dag= and ?task= keep to a DAG's, or one task's.
func (s *Server) listCache(c echo.Context) error {
	dagID, taskID, err := cacheScope(c)
	if err != nil {
		return err
	}
	entries, err := s.backend.Store().CacheEntries(dagID, taskID)
	if err != nil {
		return err
	}
	if dagID != "" && len(entries) == 0 {
		if _, ok := s.backend.DAG(dagID); !ok {
			return s.dagNotFound(dagID)
		}
	}
	if entries, err = pageOf(c, entries); err != nil {
		return err
	}
	now := time.Now()
	out := make([]CacheEntry, len(entries))
	for i, e := range entries {
		out[i] = CacheEntry{
			Key: e.Key, From: e.From, Created: e.Created.UTC(), Expires: utcOrNil(e.Expires), Live: e.Live(now),
			Outputs: e.Outputs, Artifacts: nonNil(ArtifactViews(e.Artifacts)),
		}
		if out[i].Outputs == nil {
			out[i].Outputs = map[string]any{}
		}
	}
	return c.JSON(http.StatusOK, out)
}

// clearCache answers DELETE /api/v1/cache: it deletes the entries
// GET /api/v1/cache would list with the same ?dag= and ?task=, and is a
// 404 where that is: for a DAG neither loaded nor with entries, such as
// a misspelt one.
func (s *Server) clearCache(c echo.Context) error {
	dagID, taskID, err := cacheScope(c)
	if err != nil {
		return err
	}
	n, err := s.backend.ClearCache(c.Request().Context(), dagID, taskID)
	if err != nil {
		return err
	}
	if dagID != "" && n == 0 {
		if _, ok := s.backend.DAG(dagID); !ok {
			return s.dagNotFound(dagID)
		}
	}
	return c.JSON(http.StatusOK, ClearCacheResult{Cleared: n})
}

// cacheScope reads ?dag= and ?task=; a task needs its DAG.
func cacheScope(c echo.Context) (dagID, taskID string, err error) {
	dagID, taskID = c.QueryParam("dag"), c.QueryParam("task")
	if taskID != "" && dagID == "" {
		return "", "", badRequest("task: needs dag, the DAG of the task")
	}
	return dagID, taskID, nil
}

// collectArtifacts answers POST /api/v1/artifacts/gc.
func (s *Server) collectArtifacts(c echo.Context) error {
	var req ArtifactGCRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	if req.OlderThan == "" {
		return badRequest("older_than: required, a duration such as 30d or 12h")
	}
	age, err := dag.ParseDays(req.OlderThan)
	if err != nil || age <= 0 {
		return badRequest("older_than: want a duration above zero such as 30d or 12h, got %q", req.OlderThan)
	}
	r, err := s.backend.CollectArtifacts(c.Request().Context(), age, req.DryRun)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ArtifactGCReport{
		OlderThan: req.OlderThan, DryRun: r.DryRun, Kept: r.Kept, Deleted: r.Deleted, KeptBytes: r.KeptBytes,
		FreedBytes: r.FreedBytes, CacheEntriesDropped: r.CacheEntriesDropped, OrphanChunks: r.OrphanChunks,
	})
}
