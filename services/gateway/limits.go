package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Calls without an access token (sign-in, registration, token refresh,
// the keys) are limited per client address here, at the edge: behind the
// gateway the services see one peer, the gateway, for every browser.
type anonymousLimiter struct {
	perSecond float64
	burst     float64
	proxies   []*net.IPNet // whose X-Forwarded-For names the client

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newAnonymousLimiter(perMinute int64, trustedProxies []string) (*anonymousLimiter, error) {
	l := &anonymousLimiter{perSecond: float64(perMinute) / 60, burst: max(1, float64(perMinute)/5),
		buckets: map[string]*bucket{}, lastSweep: time.Now()}
	for _, cidr := range trustedProxies {
		_, network, err := net.ParseCIDR(cidr)
		if err != nil {
			return nil, fmt.Errorf("gateway.trusted_proxies: %q is not a CIDR such as 10.0.0.0/8", cidr)
		}
		l.proxies = append(l.proxies, network)
	}
	return l, nil
}

func (l *anonymousLimiter) trusted(ip net.IP) bool {
	for _, network := range l.proxies {
		if network.Contains(ip) {
			return true
		}
	}
	return false
}

// clientAddress is the peer, or, when the peer is a trusted proxy, the last
// address in X-Forwarded-For that is not one (what the proxies in front
// saw; the addresses before it are the caller's to make up).
func (l *anonymousLimiter) clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil || !l.trusted(ip) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := net.ParseIP(strings.TrimSpace(hops[i]))
		if hop == nil {
			break
		}
		if !l.trusted(hop) {
			return hop.String()
		}
	}
	return host
}

// Allow takes a token from the client's bucket.
func (l *anonymousLimiter) Allow(client string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute { // a full bucket is no different from none
		for key, b := range l.buckets {
			if b.tokens+now.Sub(b.at).Seconds()*l.perSecond >= l.burst {
				delete(l.buckets, key)
			}
		}
		l.lastSweep = now
	}
	b, ok := l.buckets[client]
	if !ok {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[client] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.perSecond)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// publicMethods need no access token (identity's CallGuard::Public): they are
// limited per client address whatever the call carries.
var publicMethods = map[string]bool{
	"/helpline.identity.v1.IdentityService/Register": true,
	"/helpline.identity.v1.IdentityService/Login":    true,
	"/helpline.identity.v1.IdentityService/Refresh":  true,
	"/helpline.identity.v1.IdentityService/Logout":   true,
	"/helpline.identity.v1.IdentityService/GetJwks":  true,
}

// Refuses reports whether the call is over its client's rate: a public
// method, or any call that carries no token.
func (l *anonymousLimiter) Refuses(r *http.Request) bool {
	if !publicMethods[r.URL.Path] && r.Header.Get("Authorization") != "" {
		return false
	}
	return !l.Allow(l.clientAddress(r), time.Now())
}
