// Package e2e holds end-to-end tests: a real gateway built from YAML with the
// standard plugins, real brokers (kfake in process, the machine's services),
// real HTTP, SSE, WebSocket and, for browser stories, headless Chromium.
package e2e
