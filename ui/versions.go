package ui

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/store"
)

// DAGVersion is a stored version of a DAG file
// (docs/reproducibility.md#dag-versions).
type DAGVersion struct {
	Hash      string    `json:"hash"`
	DAGID     string    `json:"dag_id"`
	File      string    `json:"file"`
	FirstSeen time.Time `json:"first_seen"`
	Size      int       `json:"size"`
	GitCommit string    `json:"git_commit,omitempty"`
	GitDirty  bool      `json:"git_dirty,omitempty"`
	// Source is the file's content; only in GET …/versions/{hash}.
	Source *string `json:"source,omitempty"`
}

func dagVersion(v *store.DAGVersion) DAGVersion {
	return DAGVersion{Hash: v.Hash, DAGID: v.DAGID, File: v.File, FirstSeen: v.FirstSeen.UTC(),
		Size: v.Size, GitCommit: v.GitCommit, GitDirty: v.GitDirty}
}

// listDAGVersions answers the versions of a DAG, newest first; a DAG
// whose file is gone still has its versions.
func (s *Server) listDAGVersions(c echo.Context) error {
	id, err := pathParam(c, "dag")
	if err != nil {
		return err
	}
	vs, err := s.backend.Store().DAGVersions(id)
	if err != nil {
		return err
	}
	if len(vs) == 0 {
		if _, err := s.lookupDAG(c); err != nil {
			return err
		}
	}
	out := make([]DAGVersion, len(vs))
	for i, v := range vs {
		out[i] = dagVersion(v)
	}
	return c.JSON(http.StatusOK, out)
}

// getDAGVersion answers one version of a DAG with its source.
func (s *Server) getDAGVersion(c echo.Context) error {
	id, err := pathParam(c, "dag")
	if err != nil {
		return err
	}
	hash, err := pathParam(c, "hash")
	if err != nil {
		return err
	}
	st := s.backend.Store()
	v, err := st.DAGVersion(hash)
	if errors.Is(err, store.ErrNotFound) || (err == nil && v.DAGID != id) {
		return notFound("DAG %s has no version %s", id, hash)
	}
	if err != nil {
		return err
	}
	src, err := st.DAGSource(hash)
	if err != nil {
		return err
	}
	out := dagVersion(v)
	text := string(src)
	out.Source = &text
	return c.JSON(http.StatusOK, out)
}
