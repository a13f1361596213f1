package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config keys work as in every Helpline process: a JSON file whose nested
// objects name dotted keys ({"gateway": {"listen": ...}} is gateway.listen),
// each overridden by HELPLINE_<KEY> in the environment (dots become
// underscores, upper case). Unknown keys are refused.
type configKey struct {
	name, help string
	value      any // string, int64 or time.Duration: its default, then its value
}

type Config struct {
	keys map[string]*configKey
}

func gatewaySchema() *Config {
	c := &Config{keys: map[string]*configKey{}}
	c.add("gateway.listen", "0.0.0.0:8080", "host:port for Connect, gRPC-Web, gRPC and REST (HTTP/1.1 and h2c); port 0 picks one")
	c.add("gateway.cors_origins", "", "comma-separated origins a browser may call from (https://app.example.com); none: no cross-origin calls")
	for i, service := range backendServices {
		c.add("gateway."+service.name+"_target", fmt.Sprintf("127.0.0.1:%d", 7001+i), service.name+"'s gRPC address (host:port)")
	}
	c.add("gateway.backend_tls.ca_file", "", "PEM CA the services' certificates must chain to; set: TLS to the services, empty: h2c (plaintext)")
	c.add("gateway.backend_tls.cert_file", "", "PEM certificate the gateway presents to the services (mutual TLS); optional")
	c.add("gateway.backend_tls.key_file", "", "its private key (PEM)")
	c.add("tls.required", false, "refuse to call the services in plaintext (production)")
	c.add("gateway.descriptor_set", "", "the APIs' protobuf image (FileDescriptorSet); empty: helpline.binpb next to the binary")
	c.add("gateway.openapi_file", "", "OpenAPI description served at /openapi.yaml; empty: openapi.yaml next to the binary")
	c.add("gateway.max_request_bytes", int64(1<<20), "largest request body accepted (RESOURCE_EXHAUSTED above); requests must come uncompressed")
	c.add("gateway.max_response_bytes", int64(4<<20), "largest answer message passed on (the services' grpc.max_message_bytes)")
	c.add("gateway.anonymous_calls_per_minute_per_client", int64(300), "calls without an access token, and sign-in, registration and token refresh, one client address may make per minute (bursts of a fifth of it); RESOURCE_EXHAUSTED above")
	c.add("gateway.trusted_proxies", "", "comma-separated CIDRs of the proxies in front (the ingress): for calls from them, X-Forwarded-For names the client")
	c.add("gateway.unary_timeout", 30*time.Second, "the longest a call may take; a client's shorter deadline wins")
	c.add("gateway.stream_timeout", 10*time.Minute, "the longest a server stream (WatchRequest, WatchOffers) stays open; clients reconnect")
	c.add("gateway.web_listen", "", "host:port serving the reference web page (tools/run); empty: no page")
	c.add("gateway.web_root", "", "folder of the built reference page (build/web/page)")
	c.add("gateway.public_url", "", "the gateway's URL as browsers reach it, told to the page; empty: http://<gateway.listen>")
	c.add("metrics.listen", "0.0.0.0:9090", "host:port of the Prometheus /metrics endpoint")
	c.add("log.file", "", "file to append JSON log lines to; empty means stderr")
	c.add("log.level", "info", "lowest level logged: debug, info, warn, error")
	c.add("shutdown.grace", 10*time.Second, "how long open calls may finish after SIGTERM")
	c.add("ports_file", "", "if set, the bound ports are written there as JSON")
	return c
}

func (c *Config) add(name string, value any, help string) {
	c.keys[name] = &configKey{name: name, help: help, value: value}
}

func envName(key string) string {
	return "HELPLINE_" + strings.ToUpper(strings.NewReplacer(".", "_").Replace(key))
}

// Load reads the file (if any), then the environment.
func (c *Config) Load(file string, environ []string) error {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("cannot read config %s: %w", file, err)
		}
		var tree map[string]any
		if err := json.Unmarshal(data, &tree); err != nil {
			return fmt.Errorf("config %s is not a JSON object: %w", file, err)
		}
		flat := map[string]any{}
		flatten("", tree, flat)
		for name, raw := range flat {
			if err := c.set(name, raw); err != nil {
				return fmt.Errorf("config %s: %w", file, err)
			}
		}
	}
	byEnv := map[string]string{}
	for name := range c.keys {
		byEnv[envName(name)] = name
	}
	for _, entry := range environ {
		variable, value, _ := strings.Cut(entry, "=")
		if !strings.HasPrefix(variable, "HELPLINE_") {
			continue
		}
		name, ok := byEnv[variable]
		if !ok {
			return fmt.Errorf("environment: %s names no config key of the gateway (see --help)", variable)
		}
		if err := c.set(name, value); err != nil {
			return fmt.Errorf("environment %s: %w", variable, err)
		}
	}
	return nil
}

func flatten(prefix string, tree map[string]any, out map[string]any) {
	for key, value := range tree {
		name := key
		if prefix != "" {
			name = prefix + "." + key
		}
		if nested, ok := value.(map[string]any); ok {
			flatten(name, nested, out)
		} else {
			out[name] = value
		}
	}
}

// set parses raw (a JSON value, or an environment string) into the key's type.
func (c *Config) set(name string, raw any) error {
	key, ok := c.keys[name]
	if !ok {
		return fmt.Errorf("unknown key %q (see --help)", name)
	}
	text, isText := raw.(string)
	switch key.value.(type) {
	case string:
		if !isText {
			return fmt.Errorf("%s must be a string", name)
		}
		key.value = text
	case int64:
		switch v := raw.(type) {
		case float64:
			if v != float64(int64(v)) || v < 0 {
				return fmt.Errorf("%s must be a whole number >= 0", name)
			}
			key.value = int64(v)
		case string:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("%s must be a whole number >= 0, not %q", name, v)
			}
			key.value = n
		default:
			return fmt.Errorf("%s must be a number", name)
		}
	case bool:
		switch v := raw.(type) {
		case bool:
			key.value = v
		case string:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s must be true or false, not %q", name, v)
			}
			key.value = b
		default:
			return fmt.Errorf("%s must be true or false", name)
		}
	case time.Duration:
		if !isText {
			return fmt.Errorf("%s must be a duration such as \"30s\"", name)
		}
		d, err := time.ParseDuration(text)
		if err != nil || d <= 0 {
			return fmt.Errorf("%s must be a positive duration such as \"30s\", not %q", name, text)
		}
		key.value = d
	}
	return nil
}

func (c *Config) String(name string) string          { return c.keys[name].value.(string) }
func (c *Config) Int(name string) int64              { return c.keys[name].value.(int64) }
func (c *Config) Duration(name string) time.Duration { return c.keys[name].value.(time.Duration) }
func (c *Config) Bool(name string) bool              { return c.keys[name].value.(bool) }

// List splits a comma-separated key into its non-empty, trimmed items.
func (c *Config) List(name string) []string {
	var items []string
	for _, item := range strings.Split(c.String(name), ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

func (c *Config) Help() string {
	var names []string
	for name := range c.keys {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("Config keys (file key, environment override, default):\n")
	for _, name := range names {
		key := c.keys[name]
		def, _ := json.Marshal(key.value)
		if d, ok := key.value.(time.Duration); ok {
			def, _ = json.Marshal(d.String())
		}
		fmt.Fprintf(&b, "  %s  %s  %s\n      %s\n", name, envName(name), def, key.help)
	}
	return b.String()
}
