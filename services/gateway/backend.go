package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// A backend forwards vanguard's gRPC calls to one service over h2c, with
// the gateway's deadline applied, and notes each call's status for the
// metrics and the log.
type backend struct {
	name        string
	proxy       *httputil.ReverseProxy
	streaming   map[string]bool // method path -> server streaming
	unaryLimit  time.Duration
	streamLimit time.Duration
}

func newBackend(name, target string, service protoreflect.ServiceDescriptor, transport http.RoundTripper,
	unaryLimit, streamLimit time.Duration, logger *slog.Logger) *backend {
	b := &backend{name: name, streaming: map[string]bool{}, unaryLimit: unaryLimit, streamLimit: streamLimit}
	methods := service.Methods()
	for i := 0; i < methods.Len(); i++ {
		method := methods.Get(i)
		b.streaming[fmt.Sprintf("/%s/%s", service.FullName(), method.Name())] = method.IsStreamingServer()
	}
	targetURL := &url.URL{Scheme: "http", Host: target}
	b.proxy = &httputil.ReverseProxy{
		Rewrite: func(request *httputil.ProxyRequest) {
			request.SetURL(targetURL)
			request.SetXForwarded()
		},
		Transport:     transport,
		FlushInterval: -1, // stream messages as they come
		ModifyResponse: func(response *http.Response) error {
			call := callFrom(response.Request.Context())
			if status := response.Header.Get("Grpc-Status"); status != "" { // trailers-only
				call.setStatus(status, response.Header.Get("Grpc-Message"))
			} else {
				response.Body = &trailerReader{ReadCloser: response.Body, response: response, call: call}
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			code, message := grpcUnavailable, fmt.Sprintf("%s is unreachable: %v", name, err)
			if r.Context().Err() == context.DeadlineExceeded {
				code, message = grpcDeadlineExceeded, "deadline exceeded"
			} else if r.Context().Err() != nil {
				code, message = grpcCancelled, "the caller went away"
			}
			callFrom(r.Context()).setStatus(strconv.Itoa(code), message)
			if code == grpcUnavailable {
				logger.Warn("backend call failed", "backend", name, "method", r.URL.Path, "error", err.Error())
			}
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", strconv.Itoa(code))
			w.Header().Set("Grpc-Message", percentEncode(message))
			w.WriteHeader(http.StatusOK)
		},
	}
	return b
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	call := callFrom(r.Context())
	call.service, call.method = b.name, r.URL.Path
	limit := b.unaryLimit
	if b.streaming[r.URL.Path] {
		limit = b.streamLimit
	}
	timeout := limit
	if asked, ok := parseGrpcTimeout(r.Header.Get("Grpc-Timeout")); ok && asked < limit {
		timeout = asked
	}
	r.Header.Set("Grpc-Timeout", formatGrpcTimeout(timeout))
	// The service ends the call at the deadline itself; this only frees the
	// connection if it does not.
	ctx, cancel := context.WithTimeout(r.Context(), timeout+time.Second)
	defer cancel()
	b.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// h2cTransport speaks HTTP/2 without TLS to the services (prior knowledge),
// as gRPC clients inside the cluster do.
func h2cTransport() *http.Transport {
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	return &http.Transport{
		Protocols:           &protocols,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		HTTP2:               &http.HTTP2Config{PingTimeout: 10 * time.Second, SendPingTimeout: 30 * time.Second},
	}
}

const (
	grpcOK               = 0
	grpcCancelled        = 1
	grpcDeadlineExceeded = 4
	grpcResourceExhaust  = 8
	grpcUnavailable      = 14
)

var grpcCodeNames = []string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

func grpcCodeName(status string) string {
	code, err := strconv.Atoi(status)
	if err != nil || code < 0 || code >= len(grpcCodeNames) {
		return "UNKNOWN"
	}
	return grpcCodeNames[code]
}

// parseGrpcTimeout reads the gRPC "Grpc-Timeout" header: up to 8 digits and a unit.
func parseGrpcTimeout(value string) (time.Duration, bool) {
	if len(value) < 2 || len(value) > 9 {
		return 0, false
	}
	amount, err := strconv.ParseInt(value[:len(value)-1], 10, 64)
	if err != nil || amount < 0 {
		return 0, false
	}
	units := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second,
		'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}
	unit, ok := units[value[len(value)-1]]
	if !ok {
		return 0, false
	}
	return time.Duration(amount) * unit, true
}

func formatGrpcTimeout(timeout time.Duration) string {
	if ms := timeout.Milliseconds(); ms > 0 && ms < 1e8 {
		return strconv.FormatInt(ms, 10) + "m"
	}
	if timeout <= 0 {
		return "1n"
	}
	return strconv.FormatInt(int64(timeout/time.Second), 10) + "S"
}

// percentEncode makes a Grpc-Message header value (the spec's percent-encoding).
func percentEncode(message string) string {
	var b strings.Builder
	for i := 0; i < len(message); i++ {
		c := message[i]
		if c >= ' ' && c <= '~' && c != '%' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// A call is what the gateway learns about one request as it passes through.
type call struct {
	mu       sync.Mutex
	service  string // identity ... ("" when no service was called)
	method   string // /helpline.catalog.v1.CatalogService/SearchExperts
	status   string // the service's grpc-status
	message  string
	protocol string
}

func (c *call) setStatus(status, message string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status, c.message = status, message
}

type callKey struct{}

func callFrom(ctx context.Context) *call {
	if c, ok := ctx.Value(callKey{}).(*call); ok {
		return c
	}
	return &call{}
}

// trailerReader notes the gRPC status when the body ends: it is in the trailers.
type trailerReader struct {
	io.ReadCloser
	response *http.Response
	call     *call
	once     sync.Once
}

func (t *trailerReader) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF {
		t.once.Do(func() {
			t.call.setStatus(t.response.Trailer.Get("Grpc-Status"), t.response.Trailer.Get("Grpc-Message"))
		})
	}
	return n, err
}
