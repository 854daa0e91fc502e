package client

// WatchDone is closed when the client's watch goroutine has returned.
func (c *Client) WatchDone() <-chan struct{} { return c.done }
