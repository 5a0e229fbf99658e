package cache

// waiting reports how many callers wait for key. Only tests ask (through
// waitWaiters), so it lives here rather than on the production type.
func (g *flights) waiting(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.calls[key]; ok {
		return f.waiters
	}
	return 0
}
