package client_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"clusterkit.dev/clusterkit/client"
)

// A service client sends each keyed request to the owner the route names,
// turns the answer into an error with Check, and lets WithRetry refresh
// the map and retry once when the node no longer owns the key.
func ExampleClient_WithRetry() {
	ctx := context.Background()
	c, err := client.New(ctx, []string{"127.0.0.1:8080", "127.0.0.1:8081"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	key := "user:123"
	err = c.WithRetry(ctx, key, func(r client.Route) error {
		if r.Primary == nil {
			return client.ErrNoPrimary
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet,
			"http://"+r.Primary.IP+"/kv/get?key="+url.QueryEscape(key), nil)
		if err != nil {
			return err
		}
		client.SetMapVersion(req, r)
		resp, err := c.HTTPClient().Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return client.Check(resp)
	})
	fmt.Println(err)
}
