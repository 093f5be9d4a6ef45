// Command testplugin is an external stage plugin for discovery tests. It
// behaves according to the name it is installed under, kiln-plugin-NAME:
//
//	echo       a good plugin: version 1.2.3, requires `message` (a string),
//	           and its Run logs the message
//	sensor     a good sensor with no schema
//	liar       describes itself as "someone_else"
//	badschema  has a schema that does not compile
//	quitter    exits at once, before the handshake
//	sleeper    never answers the handshake
//	anything else: like echo, under that name
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kilnhq/kiln/plugins/proto/stagepb"
	"github.com/kilnhq/kiln/plugins/serve"
)

const echoSchema = `{
  "type": "object",
  "additionalProperties": false,
  "required": ["message"],
  "properties": {
    "message": {"type": "string"},
    "times": {"type": "integer", "minimum": 1}
  }
}`

type server struct {
	stagepb.UnimplementedStageServer
	info *stagepb.Info
}

func (s server) Describe(context.Context, *stagepb.DescribeRequest) (*stagepb.Info, error) {
	return s.info, nil
}

func (server) Run(req *stagepb.RunRequest, stream stagepb.Stage_RunServer) error {
	var with struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(req.GetWith(), &with); err != nil {
		return err
	}
	if err := stream.Send(&stagepb.RunEvent{Event: &stagepb.RunEvent_Log{Log: []byte(with.Message + "\n")}}); err != nil {
		return err
	}
	return stream.Send(&stagepb.RunEvent{Event: &stagepb.RunEvent_Result{Result: &stagepb.Result{Success: true}}})
}

func main() {
	name := strings.TrimPrefix(filepath.Base(os.Args[0]), "kiln-plugin-")
	info := &stagepb.Info{Name: name, Version: "1.2.3", Schema: []byte(echoSchema)}
	switch name {
	case "sensor":
		info.Sensor, info.Schema = true, nil
	case "liar":
		info.Name = "someone_else"
	case "badschema":
		info.Schema = []byte(`{"type": "object", "properties": {"n": {"type": "integer", "minimum": "zero"}}}`)
	case "quitter":
		fmt.Fprintln(os.Stderr, "quitter: cannot start: no config")
		os.Exit(3)
	case "sleeper":
		time.Sleep(time.Hour)
	}
	serve.Serve(server{info: info})
}
