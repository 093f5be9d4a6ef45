package proto

// Regenerating stagepb needs protoc (Debian: protobuf-compiler) and, on PATH,
// protoc-gen-go v1.36.12 and protoc-gen-go-grpc (both `go install`ed; see
// the Makefile's proto target). Then run: go generate ./plugins/proto, or make proto,
// which installs the pinned generators first.
//go:generate protoc -I . --go_out=stagepb --go_opt=paths=source_relative --go-grpc_out=stagepb --go-grpc_opt=paths=source_relative stage.proto
