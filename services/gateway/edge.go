package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// The headers a browser's Connect or gRPC-Web client sends and must be able
// to read back (connect-es and grpc-web's lists), plus the token.
var (
	corsAllowedHeaders = []string{"Authorization", "Content-Type", "Connect-Protocol-Version",
		"Connect-Timeout-Ms", "Connect-Accept-Encoding", "Connect-Content-Encoding", "Grpc-Timeout",
		"Grpc-Accept-Encoding", "X-Grpc-Web", "X-User-Agent", "Content-Encoding", "Accept-Encoding"}
	corsExposedHeaders = []string{"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin",
		"Content-Encoding", "Connect-Content-Encoding", "Connect-Accept-Encoding", "Grpc-Encoding",
		"Grpc-Accept-Encoding"}
)

// originSet is the origins allowed to call from a browser (the web page's
// joins once its port is known).
type originSet struct {
	mu      sync.RWMutex
	allowed map[string]bool
}

func newOriginSet(origins []string) *originSet {
	set := &originSet{allowed: map[string]bool{}}
	for _, origin := range origins {
		set.Add(origin)
	}
	return set
}

func (s *originSet) Add(origin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allowed[strings.TrimSuffix(origin, "/")] = true
}

func (s *originSet) Has(origin string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.allowed[origin]
}

// cors lets the allowed origins call from a browser; other origins get no
// CORS headers (their browser refuses the answer) and a refused preflight.
func cors(allowed *originSet, next http.Handler) http.Handler {
	allowHeaders := map[string]bool{}
	for _, header := range corsAllowedHeaders {
		allowHeaders[strings.ToLower(header)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if !allowed.Has(origin) {
			if preflight {
				http.Error(w, "origin not allowed: "+origin, http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		if !preflight {
			w.Header().Set("Access-Control-Expose-Headers", strings.Join(corsExposedHeaders, ", "))
			next.ServeHTTP(w, r)
			return
		}
		for _, header := range strings.Split(r.Header.Get("Access-Control-Request-Headers"), ",") {
			if header = strings.TrimSpace(strings.ToLower(header)); header != "" && !allowHeaders[header] {
				http.Error(w, "header not allowed: "+header, http.StatusForbidden)
				return
			}
		}
		w.Header().Add("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers")
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
		w.Header().Set("Access-Control-Allow-Headers", strings.Join(corsAllowedHeaders, ", "))
		w.Header().Set("Access-Control-Max-Age", "7200")
		w.WriteHeader(http.StatusNoContent)
	})
}

// admit refuses what the gateway does not take before any service sees it:
// a compressed request (it could unpack to any size; browsers' clients do
// not compress), a body over the limit, declared or as it arrives, and a
// REST path or query that is not UTF-8.
func admit(maxBytes int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, header := range []string{"Content-Encoding", "Connect-Content-Encoding", "Grpc-Encoding"} {
			if encoding := r.Header.Get(header); encoding != "" && !strings.EqualFold(encoding, "identity") {
				writeError(w, r, grpcUnimplemented, fmt.Sprintf(
					"the gateway takes requests uncompressed (%s: %s); answers may be compressed", header, encoding))
				return
			}
		}
		if r.ContentLength > maxBytes {
			writeError(w, r, grpcResourceExhaust, fmt.Sprintf("the request is %d bytes, over the gateway's %d",
				r.ContentLength, maxBytes))
			return
		}
		if query, err := url.QueryUnescape(r.URL.RawQuery); !utf8.ValidString(r.URL.Path) || err != nil ||
			!utf8.ValidString(query) {
			writeError(w, r, grpcInvalidArgument, "the path and the query must be UTF-8")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBytes)
		next.ServeHTTP(w, r)
	})
}

// withBodyDeadline gives every request's body `timeout` to arrive (a caller
// that declares a body and never sends it does not hold a connection), and
// lifts it once the body is in: a stream's answer may then take as long as
// the stream lasts.
func withBodyDeadline(timeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
			controller := http.NewResponseController(w)
			if controller.SetReadDeadline(time.Now().Add(timeout)) == nil {
				r.Body = &bodyDeadline{ReadCloser: r.Body, controller: controller}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// bodyDeadline lifts the read deadline once the body is in: a stream's
// answer may then take as long as the stream lasts.
type bodyDeadline struct {
	io.ReadCloser
	controller *http.ResponseController
	once       sync.Once
}

func (b *bodyDeadline) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(func() { b.controller.SetReadDeadline(time.Time{}) })
	}
	return n, err
}

// writeError answers in the caller's protocol with a status of the gateway's
// own, and notes it for the metrics.
func writeError(w http.ResponseWriter, r *http.Request, code int, message string) {
	callFrom(r.Context()).setStatus(fmt.Sprint(code), message)
	contentType := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(contentType, "application/grpc"): // gRPC and gRPC-Web: trailers-only
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Grpc-Status", fmt.Sprint(code))
		w.Header().Set("Grpc-Message", percentEncode(message))
		w.WriteHeader(http.StatusOK)
	case r.Header.Get("Connect-Protocol-Version") != "" || strings.HasPrefix(contentType, "application/connect+"):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(httpStatusOf(code))
		fmt.Fprintf(w, `{"code":%q,"message":%q}`, strings.ToLower(grpcCodeNames[code]), message)
	default: // REST: a google.rpc.Status
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(httpStatusOf(code))
		fmt.Fprintf(w, `{"code":%d,"message":%q,"details":[]}`, code, message)
	}
}

// httpStatusOf is the Connect protocol's HTTP status for the codes the gateway answers itself.
func httpStatusOf(code int) int {
	switch code {
	case grpcResourceExhaust:
		return http.StatusTooManyRequests
	case grpcUnavailable:
		return http.StatusServiceUnavailable
	case grpcDeadlineExceeded:
		return http.StatusGatewayTimeout
	case grpcUnimplemented:
		return http.StatusNotImplemented
	case grpcInvalidArgument:
		return http.StatusBadRequest
	default:
		return http.StatusInternalServerError
	}
}

func protocolOf(r *http.Request) string {
	contentType := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(contentType, "application/grpc-web"):
		return "grpc_web"
	case strings.HasPrefix(contentType, "application/grpc"):
		return "grpc"
	case strings.HasPrefix(contentType, "application/connect+"), r.Header.Get("Connect-Protocol-Version") != "",
		r.Method == http.MethodGet && r.URL.Query().Get("connect") == "v1":
		return "connect"
	default:
		return "rest"
	}
}

type edgeMetrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
}

func newEdgeMetrics(registry prometheus.Registerer) *edgeMetrics {
	m := &edgeMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "helpline_gateway_requests_total",
			Help: "Calls through the gateway, by service, method, the caller's protocol and status code",
		}, []string{"service", "method", "protocol", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "helpline_gateway_request_duration_seconds",
			Help:    "Time from a call's arrival to its last byte (streams: how long they stayed open)",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 600},
		}, []string{"service", "method", "protocol"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "helpline_gateway_requests_in_flight",
			Help: "Calls the gateway is serving now (open streams included), by the caller's protocol",
		}, []string{"protocol"}),
	}
	registry.MustRegister(m.requests, m.seconds, m.inFlight)
	return m
}

// observe measures every call, however it ends (an aborted stream
// included), and logs the ones that failed on our side.
func observe(metrics *edgeMetrics, logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		c := &call{protocol: protocolOf(r)}
		recorder := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		started := time.Now()
		metrics.inFlight.WithLabelValues(c.protocol).Inc()
		defer func() {
			aborted := recover()
			metrics.inFlight.WithLabelValues(c.protocol).Dec()
			c.mu.Lock()
			service, method, status, message := c.service, c.method, c.status, c.message
			c.mu.Unlock()
			code := grpcCodeName(status)
			switch {
			case status != "":
			case aborted != nil && r.Context().Err() != nil:
				code = "CANCELLED"
			case aborted != nil:
				code = "INTERNAL"
			default:
				code = codeOfHTTPStatus(recorder.status)
			}
			if service == "" {
				service, method = "none", "none" // refused or unrouted before any service: bounded labels
			} else {
				method = method[strings.LastIndexByte(method, '/')+1:]
			}
			elapsed := time.Since(started)
			metrics.requests.WithLabelValues(service, method, c.protocol, code).Inc()
			metrics.seconds.WithLabelValues(service, method, c.protocol).Observe(elapsed.Seconds())
			level := slog.LevelDebug
			if (code == "INTERNAL" || code == "UNAVAILABLE" || code == "UNKNOWN" || code == "DATA_LOSS") &&
				message != restarting {
				level = slog.LevelWarn
			}
			if logger.Enabled(r.Context(), level) {
				logger.Log(r.Context(), level, "call", "backend", service, "method", method, "protocol", c.protocol,
					"code", code, "error", message, "path", r.URL.Path, "millis", elapsed.Milliseconds())
			}
			if aborted != nil {
				panic(aborted)
			}
		}()
		next.ServeHTTP(recorder, r.WithContext(context.WithValue(r.Context(), callKey{}, c)))
	})
}

func codeOfHTTPStatus(status int) string {
	switch {
	case status < 300:
		return "OK"
	case status == http.StatusNotFound:
		return "NOT_FOUND"
	case status == http.StatusUnsupportedMediaType, status == http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case status == http.StatusMethodNotAllowed, status == http.StatusNotImplemented:
		return "UNIMPLEMENTED"
	case status == http.StatusRequestEntityTooLarge, status == http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case status == http.StatusForbidden:
		return "PERMISSION_DENIED"
	case status == http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	default:
		return "UNKNOWN"
	}
}

// statusRecorder remembers the HTTP status and keeps streaming working
// (vanguard reaches the Flusher through Unwrap).
type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (s *statusRecorder) WriteHeader(status int) {
	if !s.wroteHeader {
		s.status, s.wroteHeader = status, true
	}
	s.ResponseWriter.WriteHeader(status)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	s.wroteHeader = true
	return s.ResponseWriter.Write(p)
}

func (s *statusRecorder) Flush() {
	if flusher, ok := s.ResponseWriter.(http.Flusher); ok {
		flusher.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
