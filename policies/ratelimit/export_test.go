package ratelimit

import "time"

// SetClock replaces the counter's clock, for tests.
func SetClock(c *MemoryCounter, now func() time.Time) { c.now = now }

// Budgets is how many budgets the counter keeps.
func Budgets(c *MemoryCounter) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.tats)
}
