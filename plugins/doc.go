// Package plugins holds Kiln's stage plugins: the catalog of what each
// built-in plugin is called and accepts, and (in sub-packages) the plugins
// themselves.
package plugins
