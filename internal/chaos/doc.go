// Package chaos is Kiln's chaos suite: it runs Kiln "across real hosts" as
// containers on the local Docker Engine — a cluster of three NATS servers,
// two Kiln servers in HA mode and three workers on a private bridge
// network — and, while DAG runs go on, kills, stops and partitions them one
// at a time. Then it checks what the API and the replicated log recorded:
// every run succeeded, every retry is explained by an injected fault, no try
// was recorded twice, and no two leaders held one term.
//
// The suite itself builds only with the chaos tag (make chaos); without it
// `go test ./...` runs only the tests of the checks, which are pure (they
// take what the API answered and what was injected, and return what is
// wrong), and one that the workload DAG loads.
package chaos
