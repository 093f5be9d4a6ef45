// Command crashplugin is a stage plugin for the host's tests: a Run with
// `panic: true` panics and so crashes the plugin process, one with
// `block: true` waits until it is cancelled, one with `hang: true` never
// returns, even when cancelled, one with `flood: true` logs without end, even
// when cancelled, one with `not_yet: REASON` says its sensor's condition is
// not met, and any other echoes `echo`.
// Every Run first logs the plugin's pid.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/kilnhq/kiln/plugins/proto/stagepb"
	"github.com/kilnhq/kiln/plugins/serve"
)

type server struct {
	stagepb.UnimplementedStageServer
}

func (server) Describe(context.Context, *stagepb.DescribeRequest) (*stagepb.Info, error) {
	return &stagepb.Info{Name: "crash", Version: "test", Schema: []byte(`{"type":"object"}`)}, nil
}

func (server) Run(req *stagepb.RunRequest, stream stagepb.Stage_RunServer) error {
	var with struct {
		Panic bool   `json:"panic"`
		Block bool   `json:"block"`
		Hang  bool   `json:"hang"`
		Flood bool   `json:"flood"`
		Echo  string `json:"echo"`
		// NotYet, when set, is the poke-again result's error; "-" for none.
		NotYet string `json:"not_yet"`
	}
	if err := json.Unmarshal(req.GetWith(), &with); err != nil {
		return err
	}
	send := func(s string) error {
		return stream.Send(&stagepb.RunEvent{Event: &stagepb.RunEvent_Log{Log: []byte(s)}})
	}
	if err := send(fmt.Sprintf("pid=%d\n", os.Getpid())); err != nil {
		return err
	}
	switch {
	case with.Panic:
		panic("boom: the crash plugin was asked to panic")
	case with.Block:
		<-stream.Context().Done()
		return stream.Context().Err()
	case with.Hang:
		select {}
	case with.Flood:
		line := []byte("flood flood flood flood flood flood flood flood flood flood\n")
		for {
			_ = stream.Send(&stagepb.RunEvent{Event: &stagepb.RunEvent_Log{Log: line}})
		}
	case with.NotYet != "":
		res := &stagepb.Result{PokeAgain: true}
		if with.NotYet != "-" {
			res.Error = with.NotYet
		}
		return stream.Send(&stagepb.RunEvent{Event: &stagepb.RunEvent_Result{Result: res}})
	}
	if err := send(with.Echo + "\n"); err != nil {
		return err
	}
	return stream.Send(&stagepb.RunEvent{Event: &stagepb.RunEvent_Result{Result: &stagepb.Result{Success: true}}})
}

func main() { serve.Serve(server{}) }
