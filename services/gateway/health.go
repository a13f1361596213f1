package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"
)

// readiness asks every service's grpc.health.v1 Check (at most once a
// second, whoever asks): the gateway is ready when all say SERVING.
type readiness struct {
	client  *http.Client
	targets map[string]string // service name -> host:port

	mu      sync.Mutex
	checked time.Time
	failing map[string]string // service -> why
}

func newReadiness(transport http.RoundTripper, targets map[string]string) *readiness {
	return &readiness{client: &http.Client{Transport: transport, Timeout: 2 * time.Second}, targets: targets}
}

// Failing names the services not serving and why; empty when all are.
func (r *readiness) Failing(ctx context.Context) map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < time.Second && r.failing != nil {
		return r.failing
	}
	failing := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, target := range r.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := checkHealth(ctx, r.client, target); err != nil {
				mu.Lock()
				failing[name] = err.Error()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r.checked, r.failing = time.Now(), failing
	return failing
}

// checkHealth calls grpc.health.v1.Health/Check{service: ""} on target.
func checkHealth(ctx context.Context, client *http.Client, target string) error {
	request, err := http.NewRequestWithContext(ctx, http.MethodPost,
		"http://"+target+"/grpc.health.v1.Health/Check", bytes.NewReader(make([]byte, 5)))
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

func (r *readiness) ServeReady(w http.ResponseWriter, request *http.Request) {
	failing := r.Failing(request.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if len(failing) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	names := make([]string, 0, len(failing))
	for name := range failing {
		names = append(names, name)
	}
	sort.Strings(names)
	json.NewEncoder(w).Encode(map[string]any{"ready": len(failing) == 0, "not_serving": names, "why": failing})
}

// ServeGrpcHealth answers grpc.health.v1.Health/Check for gRPC callers (the
// health probe helpline-health, deploy/local/services): SERVING when ready.
func (r *readiness) ServeGrpcHealth(w http.ResponseWriter, request *http.Request) {
	io.Copy(io.Discard, io.LimitReader(request.Body, 1024))
	w.Header().Set("Content-Type", "application/grpc")
	w.Header().Set("Trailer", "Grpc-Status")
	status := byte(1) // SERVING
	if len(r.Failing(request.Context())) > 0 {
		status = 2 // NOT_SERVING
	}
	w.WriteHeader(http.StatusOK)
	w.Write([]byte{0, 0, 0, 0, 2, 0x08, status})
	w.Header().Set("Grpc-Status", "0")
}
