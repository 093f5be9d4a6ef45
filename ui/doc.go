// Package ui serves Kiln's HTTP API and web UI from one echo server:
//
//   - the API (docs/api.md): JSON under /api/v1, an OpenAPI document at
//     /api/v1/openapi.json, task logs as plain text or as Server-Sent
//     Events, /healthz and /metrics;
//   - the browser pages: HTML rendered on the server from embedded
//     templates (web.go), whose live parts a small embedded script
//     refreshes;
//   - authentication (auth.go): bearer tokens for the API, a cookie
//     session with CSRF tokens for the pages, and the roles viewer,
//     operator and admin.
//
// The server holds no run state of its own. Everything it shows comes from
// a [Backend] — the scheduler, which owns the DAGs and every change of
// state — and from the store the backend hands out, which the API only
// reads; users, tokens and sessions are the exception, written by this
// package.
//
// The request and response bodies are the exported types of this package
// (types.go), so the CLI decodes exactly what the server encodes. Times are
// RFC 3339 in UTC. Every API error is {"error": "..."} with a fitting
// status: 400 for a bad body or query value (naming the field), 401 without
// valid credentials, 403 for a role too weak, 404 for an unknown DAG, run,
// task, try or artifact, 409 for a conflict, 503 for the artifact routes
// while the artifact store is not open yet, 500 otherwise. A page's error
// is an HTML page with the same status.
package ui
