package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// A backend forwards vanguard's gRPC calls to one service over h2c, with
// the gateway's deadline applied, and notes each call's status for the
// metrics and the log.
type backend struct {
	backendSettings
	name      string
	proxy     *httputil.ReverseProxy
	streaming map[string]bool                           // method path -> server streaming
	inputs    map[string]protoreflect.MessageDescriptor // method path -> its request
}

// backendSettings are what every backend shares.
type backendSettings struct {
	transport   http.RoundTripper
	scheme      string // "http" (h2c) or "https"
	unaryLimit  time.Duration
	streamLimit time.Duration
	// Done when the gateway begins to stop: open streams end then, with
	// UNAVAILABLE, so their clients reconnect to another replica.
	stopping  context.Context
	anonymous *anonymousLimiter
	logger    *slog.Logger
}

func newBackend(name, target string, service protoreflect.ServiceDescriptor, settings backendSettings) *backend {
	b := &backend{backendSettings: settings, name: name, streaming: map[string]bool{},
		inputs: map[string]protoreflect.MessageDescriptor{}}
	methods := service.Methods()
	for i := 0; i < methods.Len(); i++ {
		method := methods.Get(i)
		path := fmt.Sprintf("/%s/%s", service.FullName(), method.Name())
		b.streaming[path], b.inputs[path] = method.IsStreamingServer(), method.Input()
	}
	targetURL := &url.URL{Scheme: settings.scheme, Host: target}
	b.proxy = &httputil.ReverseProxy{
		Rewrite: func(request *httputil.ProxyRequest) {
			request.SetURL(targetURL)
			request.SetXForwarded()
			// The client as the trusted proxies in front saw it, so that the
			// services (auth.trusted_proxies) limit per browser, not per gateway.
			if client := b.anonymous.clientIP(request.In); client != nil {
				request.Out.Header.Set("X-Forwarded-For", client.String())
			}
		},
		Transport:     settings.transport,
		FlushInterval: -1, // stream messages as they come
		ErrorLog:      slog.NewLogLogger(settings.logger.Handler(), slog.LevelDebug),
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
			code, message := b.classify(r, err)
			if code == grpcUnavailable {
				b.logger.Warn("backend call failed", "backend", name, "method", r.URL.Path, "error", err.Error())
			}
			answerGrpcError(w, r, code, message)
		},
	}
	return b
}

// answerGrpcError answers as a service would, trailers-only (vanguard turns
// it into the caller's protocol), and notes the status for the metrics.
func answerGrpcError(w http.ResponseWriter, r *http.Request, code int, message string) {
	callFrom(r.Context()).setStatus(strconv.Itoa(code), message)
	w.Header().Set("Content-Type", "application/grpc")
	w.Header().Set("Grpc-Status", strconv.Itoa(code))
	w.Header().Set("Grpc-Message", percentEncode(message))
	w.WriteHeader(http.StatusOK)
}

// classify tells a failure of the service from one of the caller's: only
// the first is UNAVAILABLE (and worth an alert).
func (b *backend) classify(r *http.Request, err error) (int, string) {
	switch {
	case callFrom(r.Context()).endedByStop():
		return grpcUnavailable, restarting
	case errors.Is(r.Context().Err(), context.DeadlineExceeded):
		return grpcDeadlineExceeded, "deadline exceeded"
	case r.Context().Err() != nil:
		return grpcCancelled, "the caller went away"
	default:
		return grpcUnavailable, fmt.Sprintf("%s is unreachable: %v", b.name, err)
	}
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	call := callFrom(r.Context())
	call.setMethod(b.name, r.URL.Path)
	streaming := b.streaming[r.URL.Path]
	if streaming && b.stopping.Err() != nil {
		answerGrpcError(w, r, grpcUnavailable, restarting)
		return
	}
	if b.anonymous.Refuses(r) {
		answerGrpcError(w, r, grpcResourceExhaust, "too many calls without an access token from this address: slow down")
		return
	}
	// Every method takes one request message: the service is called only
	// once all of it has arrived and parses, so a slow, cut, oversized or
	// malformed request is the caller's error, never counted against it.
	request, code, message := b.readRequest(r)
	if code != grpcOK {
		answerGrpcError(w, r, code, message)
		return
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(request)), int64(len(request))
	limit := b.unaryLimit
	if streaming {
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
	if streaming {
		stop := context.AfterFunc(b.stopping, func() {
			call.markEndedByStop()
			cancel()
		})
		defer stop()
	} else {
		w = unflushed{w} // one answer: written once at the end, not a write per part
	}
	b.proxy.ServeHTTP(w, r.WithContext(ctx))
}

const restarting = "the gateway is restarting: call again"

// readRequest reads the one gRPC message vanguard made of the caller's
// request and checks that it is an uncompressed, valid request of the method.
func (b *backend) readRequest(r *http.Request) ([]byte, int, string) {
	body, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, grpcResourceExhaust, fmt.Sprintf("the request is over the gateway's %d bytes", tooLarge.Limit)
	case err != nil && r.Context().Err() != nil:
		return nil, grpcCancelled, "the caller went away"
	case err != nil:
		return nil, grpcInvalidArgument, "the request could not be read: " + err.Error()
	case len(body) < 5 || int(binary.BigEndian.Uint32(body[1:5])) != len(body)-5:
		return nil, grpcInvalidArgument, "the request must be exactly one message"
	case body[0]&1 != 0:
		return nil, grpcUnimplemented, "the gateway takes requests uncompressed"
	}
	input, ok := b.inputs[r.URL.Path]
	if !ok {
		return nil, grpcUnimplemented, "no such method: " + r.URL.Path
	}
	if err := proto.Unmarshal(body[5:], dynamicpb.NewMessage(input)); err != nil {
		return nil, grpcInvalidArgument, fmt.Sprintf("the request is not a %s: %v", input.FullName(), err)
	}
	return body, grpcOK, ""
}

// unflushed drops ReverseProxy's flush after every write (it flushes gRPC
// answers as streams); the server sends a unary answer when it is complete.
type unflushed struct{ http.ResponseWriter }

func (unflushed) Flush() {}

// backendTransport is how the gateway reaches the services: HTTP/2 over TLS
// when gateway.backend_tls.ca_file names the services' CA (presenting
// cert_file/key_file when set, for mutual TLS), h2c otherwise, which
// tls.required refuses. The scheme goes with it.
func backendTransport(config *Config) (http.RoundTripper, string, error) {
	files := tlsFiles{ca: config.String("gateway.backend_tls.ca_file"),
		cert: config.String("gateway.backend_tls.cert_file"), key: config.String("gateway.backend_tls.key_file")}
	if files.ca == "" {
		if config.Bool("tls.required") {
			return nil, "", fmt.Errorf("gateway.backend_tls.ca_file: tls.required is set, so the services are not called in plaintext")
		}
		return h2cTransport(), "http", nil
	}
	reloading := &reloadingTransport{files: files, every: time.Minute}
	if _, err := reloading.load(); err != nil {
		return nil, "", err
	}
	return reloading, "https", nil
}

type tlsFiles struct{ ca, cert, key string }

// reloadingTransport reads its files again every `every` and, when they
// changed (a renewed certificate in a Secret updated in place), makes new
// connections with them; calls under way keep theirs.
type reloadingTransport struct {
	files tlsFiles
	every time.Duration

	mu       sync.Mutex
	current  *http.Transport
	contents string
	checked  time.Time
}

func (r *reloadingTransport) RoundTrip(request *http.Request) (*http.Response, error) {
	r.mu.Lock()
	if time.Since(r.checked) >= r.every {
		if _, err := r.loadLocked(); err != nil {
			// Keep the certificate that works; the next look tries again.
			slog.Warn("cannot read the services' TLS files again; keeping the loaded ones", "error", err.Error())
		}
	}
	transport := r.current
	r.mu.Unlock()
	return transport.RoundTrip(request)
}

// load reads the files and, if they changed, builds a transport with them.
func (r *reloadingTransport) load() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loadLocked()
}

func (r *reloadingTransport) loadLocked() (bool, error) {
	r.checked = time.Now()
	ca, err := os.ReadFile(r.files.ca)
	pool := x509.NewCertPool()
	if err != nil || !pool.AppendCertsFromPEM(ca) {
		return false, fmt.Errorf("gateway.backend_tls.ca_file: cannot read a PEM CA at %q", r.files.ca)
	}
	contents := string(ca)
	tlsConfig := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if r.files.cert != "" {
		cert, err := tls.LoadX509KeyPair(r.files.cert, r.files.key)
		if err != nil {
			return false, fmt.Errorf("gateway.backend_tls.cert_file/key_file: %v", err)
		}
		tlsConfig.Certificates = []tls.Certificate{cert}
		contents += string(cert.Certificate[0])
	}
	if contents == r.contents {
		return false, nil
	}
	var protocols http.Protocols
	protocols.SetHTTP2(true)
	transport := h2cTransport()
	transport.Protocols = &protocols
	transport.TLSClientConfig = tlsConfig
	if r.current != nil {
		r.current.CloseIdleConnections()
	}
	r.current, r.contents = transport, contents
	return true, nil
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
	grpcInvalidArgument  = 3
	grpcDeadlineExceeded = 4
	grpcNotFound         = 5
	grpcInternal         = 13
	grpcResourceExhaust  = 8
	grpcUnimplemented    = 12
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
	status   string // the service's grpc-status ("" while unknown)
	message  string
	stopped  bool // a stream the gateway ended because it is stopping
	protocol string
}

func (c *call) setStatus(status, message string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status, c.message = status, message
}

func (c *call) setMethod(service, method string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.service, c.method = service, method
}

func (c *call) markEndedByStop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
}

func (c *call) endedByStop() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

type callKey struct{}

func callFrom(ctx context.Context) *call {
	if c, ok := ctx.Value(callKey{}).(*call); ok {
		return c
	}
	return &call{}
}

// trailerReader notes the gRPC status when the service's answer ends: it is
// in the trailers, or missing when the answer broke off. A stream the
// gateway ends because it is stopping ends with UNAVAILABLE instead of a
// broken connection, so that clients reconnect.
type trailerReader struct {
	io.ReadCloser
	response *http.Response
	call     *call
	once     sync.Once
}

func (t *trailerReader) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	switch {
	case err == nil:
	case err == io.EOF:
		t.once.Do(func() {
			status := t.response.Trailer.Get("Grpc-Status")
			if status == "" {
				t.call.setStatus(strconv.Itoa(grpcInternal), "the service's answer ended without a status")
				return
			}
			t.call.setStatus(status, t.response.Trailer.Get("Grpc-Message"))
		})
	case t.call.endedByStop():
		t.once.Do(func() {
			message := restarting
			t.call.setStatus(strconv.Itoa(grpcUnavailable), message)
			if t.response.Trailer == nil {
				t.response.Trailer = http.Header{}
			}
			t.response.Trailer.Set("Grpc-Status", strconv.Itoa(grpcUnavailable))
			t.response.Trailer.Set("Grpc-Message", percentEncode(message))
		})
		return n, io.EOF
	default:
		t.once.Do(func() {
			switch ctx := t.response.Request.Context(); {
			case errors.Is(ctx.Err(), context.DeadlineExceeded):
				t.call.setStatus(strconv.Itoa(grpcDeadlineExceeded), "deadline exceeded")
			case ctx.Err() != nil:
				t.call.setStatus(strconv.Itoa(grpcCancelled), "the caller went away")
			default:
				t.call.setStatus(strconv.Itoa(grpcUnavailable), "the service's answer broke off: "+err.Error())
			}
		})
	}
	return n, err
}
