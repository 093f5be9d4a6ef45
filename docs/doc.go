// Package docs holds Kiln's user documentation, the Markdown files in this
// folder. It has no code; its test keeps the documentation the one
// reference: every link to a page and heading of it resolves, and no file
// of the repository cites a document that is not in it.
package docs
