package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protowire"
)

// health follows each service's grpc.health.v1 Check in the background
// (helpline_gateway_backend_up, a log line when one changes). The gateway
// itself is ready while it runs and is not shutting down: a service that is
// down answers its own calls UNAVAILABLE, it does not take the others down
// with it.
type health struct {
	client       *http.Client
	scheme       string            // "http" or "https"
	targets      map[string]string // service name -> host:port
	up           *prometheus.GaugeVec
	logger       *slog.Logger
	shuttingDown atomic.Bool

	mu      sync.Mutex
	failing map[string]string // service -> why it is not serving; nil before the first round
}

func newHealth(transport http.RoundTripper, scheme string, targets map[string]string,
	registry prometheus.Registerer, logger *slog.Logger) *health {
	h := &health{client: &http.Client{Transport: transport, Timeout: 2 * time.Second}, scheme: scheme, targets: targets,
		logger: logger, up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "helpline_gateway_backend_up",
			Help: "1 while the service answers its health check SERVING, as the gateway last saw it (every 5 s)",
		}, []string{"service"})}
	registry.MustRegister(h.up)
	return h
}

// Watch checks every service every `every` until ctx ends.
func (h *health) Watch(ctx context.Context, every time.Duration) {
	for {
		h.checkAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

func (h *health) checkAll(ctx context.Context) {
	failing := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, target := range h.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := checkHealth(ctx, h.client, h.scheme, target); err != nil {
				mu.Lock()
				failing[name] = err.Error()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	h.mu.Lock()
	before := h.failing
	h.failing = failing
	h.mu.Unlock()
	for name, target := range h.targets {
		why, down := failing[name]
		if down {
			h.up.WithLabelValues(name).Set(0)
		} else {
			h.up.WithLabelValues(name).Set(1)
		}
		_, wasDown := before[name]
		switch {
		case down && (before == nil || !wasDown):
			h.logger.Warn("service not serving", "backend", name, "target", target, "error", why)
		case !down && before != nil && wasDown:
			h.logger.Info("service serving again", "backend", name, "target", target)
		}
	}
}

// checkHealth calls grpc.health.v1.Health/Check{service: ""} on target.
func checkHealth(ctx context.Context, client *http.Client, scheme, target string) error {
	request, err := http.NewRequestWithContext(ctx, http.MethodPost,
		scheme+"://"+target+"/grpc.health.v1.Health/Check", bytes.NewReader(make([]byte, 5)))
	if err != nil {
		return err
	}
	request.Header.Set("Content-Type", "application/grpc")
	request.Header.Set("Te", "trailers")
	response, err := client.Do(request)
	if err != nil {
		return fmt.Errorf("unreachable: %v", err)
	}
	defer response.Body.Close()
	body, err := io.ReadAll(io.LimitReader(response.Body, 1024))
	if err != nil {
		return fmt.Errorf("unreadable answer: %v", err)
	}
	status := response.Trailer.Get("Grpc-Status")
	if status == "" {
		status = response.Header.Get("Grpc-Status")
	}
	if status != "0" {
		return fmt.Errorf("health check failed: %s", grpcCodeName(status))
	}
	// HealthCheckResponse{status = 1}: 0x08 then SERVING (1).
	if len(body) < 7 || binary.BigEndian.Uint32(body[1:5]) < 2 || body[5] != 0x08 || body[6] != 1 {
		return fmt.Errorf("not serving")
	}
	return nil
}

// ServeReady is /readyz: 200 while the gateway takes calls, 503 once it is
// shutting down; the body says which services are not serving and why.
func (h *health) ServeReady(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	checked := h.failing != nil
	names := make([]string, 0, len(h.failing))
	why := map[string]string{}
	for name, reason := range h.failing {
		names = append(names, name)
		why[name] = reason
	}
	h.mu.Unlock()
	sort.Strings(names)
	ready := !h.shuttingDown.Load()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(map[string]any{"ready": ready, "services_checked": checked,
		"not_serving": names, "why": why})
}

// ServeGrpcHealth answers grpc.health.v1.Health/Check for gRPC callers (the
// probe helpline-health, deploy/local/services): "" is readiness, as
// /readyz, "helpline.liveness" liveness, as the services name them; any
// other name is NOT_FOUND, as the health protocol says.
func (h *health) ServeGrpcHealth(w http.ResponseWriter, request *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(request.Body, 1024))
	w.Header().Set("Content-Type", "application/grpc")
	w.Header().Set("Trailer", "Grpc-Status")
	service, ok := healthCheckService(body)
	if !ok || (service != "" && service != "helpline.liveness") {
		w.Header().Set("Grpc-Status", fmt.Sprint(grpcNotFound))
		w.WriteHeader(http.StatusOK)
		return
	}
	status := byte(1) // SERVING
	if service == "" && h.shuttingDown.Load() {
		status = 2 // NOT_SERVING
	}
	w.WriteHeader(http.StatusOK)
	w.Write([]byte{0, 0, 0, 0, 2, 0x08, status})
	w.Header().Set("Grpc-Status", "0")
}

// healthCheckService reads HealthCheckRequest{string service = 1} from one
// uncompressed gRPC message.
func healthCheckService(frame []byte) (string, bool) {
	if len(frame) < 5 || frame[0] != 0 || int(binary.BigEndian.Uint32(frame[1:5])) != len(frame)-5 {
		return "", false
	}
	message, service := frame[5:], ""
	for len(message) > 0 {
		number, kind, n := protowire.ConsumeTag(message)
		if n < 0 {
			return "", false
		}
		message = message[n:]
		if number == 1 && kind == protowire.BytesType {
			value, m := protowire.ConsumeBytes(message)
			if m < 0 {
				return "", false
			}
			service, message = string(value), message[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(number, kind, message)
		if m < 0 {
			return "", false
		}
		message = message[m:]
	}
	return service, true
}
