package sdk_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kilnhq/kiln/plugins/proto"
	"github.com/kilnhq/kiln/plugins/proto/stagepb"
	"github.com/kilnhq/kiln/plugins/sdk"
)

// connect serves s in-process through go-plugin's test helpers, over real
// gRPC, and returns the host's side of it.
func connect(t *testing.T, s sdk.Stage) stagepb.StageClient {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		proto.PluginName: &proto.GRPCPlugin{Impl: sdk.NewServer(s)},
	})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(proto.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(stagepb.StageClient)
}

// readySensor is a sensor that waits for READY=yes in the task's environment.
type readySensor struct{}

func (readySensor) Info() sdk.Info {
	return sdk.Info{Name: "ready_sensor", Sensor: true, Schema: []byte(`{"type":"object","additionalProperties":false}`)}
}

func (readySensor) Run(_ context.Context, t *sdk.Task) error {
	if t.Getenv("READY") != "yes" {
		t.Logf("READY is %q", t.Getenv("READY"))
		return sdk.ErrNotYet
	}
	return nil
}

// events runs one task and returns its log and result.
func events(t *testing.T, c stagepb.StageClient, req *stagepb.RunRequest) (string, *stagepb.Result) {
	t.Helper()
	stream, err := c.Run(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	var res *stagepb.Result
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return log.String(), res
		}
		if err != nil {
			t.Fatal(err)
		}
		if res != nil {
			t.Fatalf("an event after the result: %v", ev)
		}
		log.Write(ev.GetLog())
		res = ev.GetResult()
	}
}

func TestNewServerInProcess(t *testing.T) {
	c := connect(t, readySensor{})
	info, err := c.Describe(context.Background(), &stagepb.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetName() != "ready_sensor" || !info.GetSensor() || !strings.Contains(string(info.GetSchema()), "additionalProperties") {
		t.Errorf("Describe = %v", info)
	}

	log, res := events(t, c, &stagepb.RunRequest{Env: []string{"READY=no"}})
	if log != "READY is \"no\"\n" || res.GetSuccess() || !res.GetPokeAgain() || res.GetError() != "condition not met yet" {
		t.Errorf("not ready: log %q, result %v", log, res)
	}
	log, res = events(t, c, &stagepb.RunRequest{Env: []string{"READY=yes"}})
	if log != "" || !res.GetSuccess() || res.GetPokeAgain() {
		t.Errorf("ready: log %q, result %v", log, res)
	}
}

type badInfo struct{ readySensor }

func (badInfo) Info() sdk.Info { return sdk.Info{Name: "bad", Schema: []byte(`"object"`)} }

func TestNewServerBadInfo(t *testing.T) {
	_, err := sdk.NewServer(badInfo{}).Describe(context.Background(), &stagepb.DescribeRequest{})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "plugin bad: invalid Schema: not a JSON object") {
		t.Errorf("Describe error = %v, want FailedPrecondition saying the schema is not an object", err)
	}
}
