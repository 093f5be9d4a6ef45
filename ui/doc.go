// Package ui serves Kiln's HTTP API (SPEC 4): JSON under /api/v1, an OpenAPI
// document at /api/v1/openapi.json, /healthz, and task logs as plain text or
// as Server-Sent Events. The HTML pages will live here too.
//
// The server holds no state of its own. Everything it shows comes from a
// [Backend] — the scheduler, which owns the DAGs and every change of state —
// and from the store the backend hands out, which the API only reads.
//
// The request and response bodies are the exported types of this package
// (types.go), so the CLI decodes exactly what the server encodes. Times are
// RFC 3339 in UTC. Every error is {"error": "..."} with a fitting status:
// 400 for a bad body or query value (naming the field), 404 for an unknown
// DAG, run, task or try, 409 for a conflict, 500 otherwise.
package ui
