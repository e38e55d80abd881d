//go:build !race

package server

const raceAllocs = 0
