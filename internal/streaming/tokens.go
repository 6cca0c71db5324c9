package streaming

import (
	"fmt"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
)

// The kinds of session, as they appear in the URL path.
const (
	kindExec        = "exec"
	kindAttach      = "attach"
	kindPortForward = "portforward"
)

// tokenTTL matches cri-streaming's token cache: a URL not used within a
// minute is gone.
const tokenTTL = time.Minute

// tokenCache mirrors cri-streaming's single-use tokens so the server can
// serve the sessions cri-streaming cannot (WebSocket v5) itself and so
// every session, whoever serves it, consumes its token here first.
type tokenCache struct {
	now func() time.Time

	mu      sync.Mutex
	pending map[string]pendingRequest
}

type pendingRequest struct {
	kind    string
	req     any // *runtimeapi.ExecRequest, AttachRequest or PortForwardRequest
	expires time.Time
}

// put records req under the token at the end of rawURL.
func (c *tokenCache) put(kind, rawURL string, req any) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("streaming: parse %s URL %q: %w", kind, rawURL, err)
	}
	token := path.Base(u.Path)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending = map[string]pendingRequest{}
	}
	for t, p := range c.pending {
		if now.After(p.expires) {
			delete(c.pending, t)
		}
	}
	c.pending[token] = pendingRequest{kind: kind, req: req, expires: now.Add(tokenTTL)}
	return nil
}

// take consumes the token of a kind; false if unknown, used or expired.
func (c *tokenCache) take(kind, token string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pending[token]
	if !ok {
		return nil, false
	}
	delete(c.pending, token)
	if p.kind != kind || c.now().After(p.expires) {
		return nil, false
	}
	return p.req, true
}

// splitPath splits "/<kind>/<token>".
func splitPath(p string) (kind, token string, ok bool) {
	kind, token, ok = strings.Cut(strings.TrimPrefix(p, "/"), "/")
	if !ok || token == "" || strings.Contains(token, "/") {
		return "", "", false
	}
	switch kind {
	case kindExec, kindAttach, kindPortForward:
		return kind, token, true
	}
	return "", "", false
}
