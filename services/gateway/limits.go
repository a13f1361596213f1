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

// maxClients bounds the buckets kept (about 100 bytes each) between sweeps.
const maxClients = 100_000

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

// clientAddress keys clientIP's address for the limits. An IPv6 client is
// its /64: one host has them all.
func (l *anonymousLimiter) clientAddress(r *http.Request) string {
	client := l.clientIP(r)
	if client == nil {
		return r.RemoteAddr
	}
	if client.To4() == nil {
		return client.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return client.String()
}

// clientIP is the peer, or, when the peer is a trusted proxy, the last
// address in X-Forwarded-For that is not one (what the proxies in front
// saw; the addresses before it are the caller's to make up), or the first
// when all are trusted; nil when the peer is no IP address.
func (l *anonymousLimiter) clientIP(r *http.Request) net.IP {
	peer := parseAddress(r.RemoteAddr)
	if peer == nil {
		return nil
	}
	client := peer
	if l.trusted(peer) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop := parseAddress(hops[i])
			if hop == nil {
				break
			}
			client = hop
			if !l.trusted(hop) {
				break
			}
		}
	}
	return client
}

// parseAddress reads "1.2.3.4", "1.2.3.4:5", "::1", "[::1]:5".
func parseAddress(text string) net.IP {
	text = strings.TrimSpace(text)
	if host, _, err := net.SplitHostPort(text); err == nil {
		text = host
	}
	return net.ParseIP(strings.Trim(text, "[]"))
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
	if !ok && len(l.buckets) >= maxClients {
		client = "overflow" // so many at once: the newcomers share one bucket
		b, ok = l.buckets[client]
	}
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
// method, or any call that carries no token (an Authorization header that
// is not "Bearer <JWT>" is none: the services do not limit calls whose token
// fails to verify).
func (l *anonymousLimiter) Refuses(r *http.Request) bool {
	if !publicMethods[r.URL.Path] && looksLikeBearerToken(r.Header.Get("Authorization")) {
		return false
	}
	return !l.Allow(l.clientAddress(r), time.Now())
}

func looksLikeBearerToken(authorization string) bool {
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.Count(token, ".") != 2 {
		return false
	}
	for _, part := range strings.Split(token, ".") {
		if part == "" || strings.Trim(part, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return false
		}
	}
	return true
}
