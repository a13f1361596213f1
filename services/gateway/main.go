// helpline-gateway: Connect, gRPC-Web, gRPC and REST/JSON (from the
// google.api.http annotations) for browsers and scripts, in front of the
// five services' gRPC, built on connectrpc.com/vanguard. No state of its own.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/vanguard"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	config := gatewaySchema()
	flags := flag.NewFlagSet("helpline-gateway", flag.ContinueOnError)
	file := flags.String("config", "", "JSON config file")
	checkOnly := flags.Bool("check-config", false, "validate the config (file and environment), then exit")
	flags.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: %s [--config FILE] [--check-config]\n\n%s", os.Args[0], config.Help())
	}
	if err := flags.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if err := config.Load(*file, os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "helpline-gateway:", err)
		os.Exit(2)
	}
	logger, err := newLogger(config.String("log.file"), config.String("log.level"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helpline-gateway:", err)
		os.Exit(2)
	}
	registry := prometheus.NewRegistry()
	gateway, err := newGateway(config, logger, registry)
	if err != nil {
		logger.Error("cannot start", "error", err.Error())
		fmt.Fprintln(os.Stderr, "helpline-gateway:", err)
		os.Exit(2)
	}
	if *checkOnly {
		fmt.Println("config ok")
		return
	}
	if err := gateway.Run(config, registry); err != nil {
		logger.Error("stopped", "error", err.Error())
		os.Exit(1)
	}
}

type gateway struct {
	logger      *slog.Logger
	handler     http.Handler // Connect, gRPC-Web, gRPC, REST and the gateway's own paths
	openapiFile string
	health      *health
	origins     *originSet
	stop        context.CancelFunc // ends the open streams
}

func newGateway(config *Config, logger *slog.Logger, registry prometheus.Registerer) (*gateway, error) {
	descriptorSet := besideBinary(config.String("gateway.descriptor_set"), "helpline.binpb")
	schemas, err := loadSchemas(descriptorSet)
	if err != nil {
		return nil, err
	}
	maxBytes := config.Int("gateway.max_request_bytes")
	if maxBytes < 1024 || maxBytes > 64<<20 {
		return nil, fmt.Errorf("gateway.max_request_bytes must be between 1024 and %d", 64<<20)
	}
	maxResponseBytes := config.Int("gateway.max_response_bytes")
	if maxResponseBytes < 1024 || maxResponseBytes > 64<<20 {
		return nil, fmt.Errorf("gateway.max_response_bytes must be between 1024 and %d", 64<<20)
	}
	anonymous, err := newAnonymousLimiter(config.Int("gateway.anonymous_calls_per_minute_per_client"),
		config.List("gateway.trusted_proxies"))
	if err != nil {
		return nil, err
	}
	if anonymous.perSecond <= 0 {
		return nil, fmt.Errorf("gateway.anonymous_calls_per_minute_per_client must be at least 1")
	}
	stopping, stop := context.WithCancel(context.Background())
	built := false
	defer func() {
		if !built {
			stop()
		}
	}()
	transport, scheme, err := backendTransport(config)
	if err != nil {
		return nil, err
	}
	settings := backendSettings{transport: transport, scheme: scheme, unaryLimit: config.Duration("gateway.unary_timeout"),
		streamLimit: config.Duration("gateway.stream_timeout"), stopping: stopping, anonymous: anonymous,
		logger: logger}
	targets := map[string]string{}
	var services []*vanguard.Service
	for _, backend := range backendServices {
		target := config.String("gateway." + backend.name + "_target")
		if _, _, err := net.SplitHostPort(target); err != nil {
			return nil, fmt.Errorf("gateway.%s_target must be host:port, not %q", backend.name, target)
		}
		targets[backend.name] = target
		handler := newBackend(backend.name, target, schemas[backend.name], settings)
		services = append(services, vanguard.NewServiceWithSchema(schemas[backend.name], handler,
			vanguard.WithTargetProtocols(vanguard.ProtocolGRPC),
			vanguard.WithTargetCodecs(vanguard.CodecProto),
			vanguard.WithNoTargetCompression(),
			// Requests are held to max_request_bytes before this (admit); this bounds answers.
			vanguard.WithMaxMessageBufferBytes(uint32(maxResponseBytes)),
			// Cache busters and tracking parameters do not break a REST call.
			vanguard.WithRESTUnmarshalOptions(vanguard.RESTUnmarshalOptions{DiscardUnknownQueryParams: true})))
	}
	transcoder, err := vanguard.NewTranscoder(services)
	if err != nil {
		return nil, fmt.Errorf("cannot route the services: %w", err)
	}
	metrics := newEdgeMetrics(registry)
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	g := &gateway{logger: logger, health: newHealth(settings.transport, settings.scheme, targets, registry, logger), stop: stop,
		openapiFile: besideBinary(config.String("gateway.openapi_file"), "openapi.yaml")}
	if _, err := os.Stat(g.openapiFile); err != nil {
		return nil, fmt.Errorf("no OpenAPI description: %w", err)
	}
	if config.String("gateway.web_listen") != "" {
		if _, err := os.Stat(filepath.Join(config.String("gateway.web_root"), "index.html")); err != nil {
			return nil, fmt.Errorf("gateway.web_listen needs gateway.web_root, the built page's folder: %w", err)
		}
	}
	origins := config.List("gateway.cors_origins")
	for _, origin := range origins {
		if origin == "*" || !strings.Contains(origin, "://") {
			return nil, fmt.Errorf("gateway.cors_origins: %q is not an origin such as https://app.example.com", origin)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", g.health.ServeReady)
	mux.HandleFunc("POST /grpc.health.v1.Health/Check", g.health.ServeGrpcHealth)
	mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		http.ServeFile(w, r, g.openapiFile)
	})
	g.origins = newOriginSet(origins)
	mux.Handle("/", observe(metrics, logger, cors(g.origins, admit(maxBytes, transcoder))))
	// A body arrives well before the call's own deadline, so a slow one is
	// the caller's error and not the service's DEADLINE_EXCEEDED.
	bodyTimeout := min(10*time.Second, config.Duration("gateway.unary_timeout")/2)
	g.handler = recoverPanics(logger, withBodyDeadline(bodyTimeout, mux))
	built = true
	return g, nil
}

// Run serves until SIGTERM or SIGINT, then lets open calls finish for shutdown.grace.
func (g *gateway) Run(config *Config, registry *prometheus.Registry) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true) // gRPC callers and HTTP/2 proxies in front
	main := &http.Server{Handler: g.handler, Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(g.logger.Handler(), slog.LevelDebug)}
	metrics := &http.Server{Handler: promhttp.HandlerFor(registry, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
	servers := []*http.Server{main, metrics}
	ports := map[string]int{}
	listen := func(server *http.Server, address, portName string) error {
		listener, err := net.Listen("tcp", address)
		if err != nil {
			return fmt.Errorf("cannot listen on %s: %w", address, err)
		}
		ports[portName] = listener.Addr().(*net.TCPAddr).Port
		go func() {
			if err := server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.logger.Error("server failed", "port", portName, "error", err.Error())
				stop()
			}
		}()
		return nil
	}
	if err := listen(main, config.String("gateway.listen"), "grpc_port"); err != nil {
		return err
	}
	if err := listen(metrics, config.String("metrics.listen"), "metrics_port"); err != nil {
		return err
	}
	if webListen := config.String("gateway.web_listen"); webListen != "" {
		publicURL := config.String("gateway.public_url")
		if publicURL == "" {
			publicURL = fmt.Sprintf("http://%s", hostPort(config.String("gateway.listen"), ports["grpc_port"]))
		}
		web := &http.Server{Handler: webPage(config.String("gateway.web_root"), publicURL),
			ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
		servers = append(servers, web)
		if err := listen(web, webListen, "web_port"); err != nil {
			return err
		}
		// The page calls from there (as 127.0.0.1 or as localhost).
		pageOrigin := "http://" + hostPort(webListen, ports["web_port"])
		g.origins.Add(pageOrigin)
		g.origins.Add(strings.Replace(pageOrigin, "//127.0.0.1:", "//localhost:", 1))
	}
	if path := config.String("ports_file"); path != "" {
		if err := writePortsFile(path, ports); err != nil {
			return err
		}
	}
	g.logger.Info("serving", "listen", config.String("gateway.listen"), "ports", ports)
	watching, stopWatching := context.WithCancel(context.Background())
	defer stopWatching()
	go g.health.Watch(watching, 5*time.Second)
	<-ctx.Done()
	g.health.shuttingDown.Store(true)
	g.stop()
	g.logger.Info("shutting down", "grace", config.Duration("shutdown.grace").String())
	shutdown, cancel := context.WithTimeout(context.Background(), config.Duration("shutdown.grace"))
	defer cancel()
	var failed error
	for _, server := range servers {
		if err := server.Shutdown(shutdown); err != nil {
			failed = fmt.Errorf("calls still open after the grace period: %w", err)
		}
	}
	return failed
}

// webPage serves the reference page's files (no folder listings) and tells
// it where the gateway is; the page may call only there and be framed nowhere.
func webPage(root, gatewayURL string) http.Handler {
	files := os.DirFS(root)
	policy := fmt.Sprintf("default-src 'self'; connect-src 'self' %s; img-src 'self' data:; frame-ancestors 'none'; "+
		"base-uri 'none'; object-src 'none'; form-action 'none'", gatewayURL)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", policy)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		switch {
		case name == "gateway.json":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			json.NewEncoder(w).Encode(map[string]string{"url": gatewayURL})
			return
		case name == "":
			name = "index.html"
		}
		if info, err := fs.Stat(files, name); err != nil || !info.Mode().IsRegular() {
			http.NotFound(w, r)
			return
		}
		http.ServeFileFS(w, r, files, name)
	})
}

func hostPort(listen string, port int) string {
	host, _, _ := net.SplitHostPort(listen)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, fmt.Sprint(port))
}

func writePortsFile(path string, ports map[string]int) error {
	data, _ := json.Marshal(ports)
	temporary := path + ".tmp"
	if err := os.WriteFile(temporary, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(temporary, path)
}

// besideBinary is path, or name in the executable's folder when path is empty.
func besideBinary(path, name string) string {
	if path != "" {
		return path
	}
	executable, err := os.Executable()
	if err != nil {
		return name
	}
	return filepath.Join(filepath.Dir(executable), name)
}

func recoverPanics(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if recovered := recover(); recovered != nil {
				if recovered == http.ErrAbortHandler {
					panic(recovered)
				}
				logger.Error("handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(recovered))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// newLogger writes JSON lines as every Helpline process does.
func newLogger(file, level string) (*slog.Logger, error) {
	var out io.Writer = os.Stderr
	if file != "" {
		f, err := os.OpenFile(file, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, fmt.Errorf("cannot open log.file: %w", err)
		}
		out = f
	}
	var minimum slog.Level
	if err := minimum.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log.level must be debug, info, warn or error, not %q", level)
	}
	handler := slog.NewJSONHandler(out, &slog.HandlerOptions{Level: minimum,
		ReplaceAttr: func(groups []string, attr slog.Attr) slog.Attr {
			switch {
			case len(groups) > 0:
			case attr.Key == slog.TimeKey:
				return slog.String("time", attr.Value.Time().UTC().Format("2006-01-02T15:04:05.000000Z"))
			case attr.Key == slog.LevelKey:
				return slog.String("level", strings.ToLower(attr.Value.String()))
			case attr.Key == "error" && attr.Value.String() == "":
				return slog.Attr{} // dropped
			}
			return attr
		}})
	return slog.New(handler).With("service", "gateway"), nil
}
