//go:build race

package server

// raceAllocs is what the race detector adds to a proxied request's
// allocations.
const raceAllocs = 1
