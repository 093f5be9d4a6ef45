package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestDatasetEventsAndQueues(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "kiln.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	b := &Batch{}
	for i, uri := range []string{"s3://a/b", "s3://a/b.csv", "s3://a/b", "s3://a/b"} {
		b.PutDatasetEvent(&DatasetEvent{ID: uint64(i + 1), URI: uri, Time: at.Add(time.Duration(i) * time.Minute), SourceDAGID: "p", Extra: map[string]any{"n": float64(i)}})
	}
	b.PutDatasetQueue("consumer", "s3://a/b", []DatasetEvent{{ID: 1, URI: "s3://a/b"}, {ID: 3, URI: "s3://a/b"}})
	b.PutDatasetQueue("other", "s3://a/b.csv", []DatasetEvent{{ID: 2, URI: "s3://a/b.csv"}})
	if err := s.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}

	events, total, err := s.DatasetEvents("s3://a/b", 2)
	if err != nil || total != 3 || len(events) != 2 || events[0].ID != 4 || events[1].ID != 3 {
		t.Fatalf("events of s3://a/b: %+v, total %d, %v; want 4 and 3 of 3", events, total, err)
	}
	if events, total, _ := s.DatasetEvents("s3://a/b.csv", 10); total != 1 || len(events) != 1 || events[0].ID != 2 {
		t.Errorf("events of s3://a/b.csv: %+v of %d", events, total)
	}
	if events, total, _ := s.DatasetEvents("s3://nothing", 10); total != 0 || len(events) != 0 {
		t.Errorf("events of an unknown dataset: %+v of %d", events, total)
	}
	if last, err := s.LastDatasetEventID(); err != nil || last != 4 {
		t.Errorf("last event id %d, %v; want 4", last, err)
	}
	sets, err := s.Datasets()
	if err != nil || len(sets) != 2 || sets[0].URI != "s3://a/b" || sets[0].Events != 3 || sets[0].Last.ID != 4 {
		t.Errorf("datasets: %+v, %v", sets, err)
	}
	queues, err := s.DatasetQueues()
	if err != nil || len(queues["consumer"]["s3://a/b"]) != 2 || len(queues["other"]["s3://a/b.csv"]) != 1 {
		t.Fatalf("queues: %+v, %v", queues, err)
	}

	b = &Batch{}
	b.PutDatasetQueue("consumer", "s3://a/b", nil)
	if err := s.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if queues, _ := s.DatasetQueues(); queues["consumer"] != nil || queues["other"] == nil {
		t.Errorf("after consuming: %+v", queues)
	}
}
