package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/anypb"
)

func TestConfigReadsNestedAndDottedKeysAndTheEnvironmentWins(t *testing.T) {
	file := t.TempDir() + "/gateway.json"
	os.WriteFile(file, []byte(`{"gateway": {"listen": "127.0.0.1:1", "unary_timeout": "5s"}, "gateway.cors_origins": "https://a.example, https://b.example"}`), 0o644)
	config := gatewaySchema()
	if err := config.Load(file, []string{"HELPLINE_GATEWAY_LISTEN=127.0.0.1:2", "PATH=/bin"}); err != nil {
		t.Fatal(err)
	}
	if got := config.String("gateway.listen"); got != "127.0.0.1:2" {
		t.Errorf("gateway.listen = %q, want the environment's", got)
	}
	if got := config.Duration("gateway.unary_timeout"); got != 5*time.Second {
		t.Errorf("gateway.unary_timeout = %v", got)
	}
	if got := config.List("gateway.cors_origins"); len(got) != 2 || got[1] != "https://b.example" {
		t.Errorf("gateway.cors_origins = %q", got)
	}
}

func TestConfigRefusesWhatItDoesNotKnowOrCannotRead(t *testing.T) {
	for _, c := range []struct{ file, env, want string }{
		{`{"gateway": {"listne": "x"}}`, "", `unknown key "gateway.listne"`},
		{`{"gateway": {"unary_timeout": "soon"}}`, "", "gateway.unary_timeout must be a positive duration"},
		{`{"gateway": {"max_request_bytes": "big"}}`, "", "gateway.max_request_bytes must be a whole number"},
		{`{}`, "HELPLINE_GATEWAY_LISTNE=x", "HELPLINE_GATEWAY_LISTNE names no config key"},
	} {
		file := t.TempDir() + "/gateway.json"
		os.WriteFile(file, []byte(c.file), 0o644)
		err := gatewaySchema().Load(file, []string{c.env})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: error %v, want it to say %q", c.file, c.env, err, c.want)
		}
	}
}

func TestGrpcTimeoutsRoundTrip(t *testing.T) {
	for text, want := range map[string]time.Duration{"250m": 250 * time.Millisecond, "3S": 3 * time.Second,
		"1H": time.Hour, "5u": 5 * time.Microsecond} {
		if got, ok := parseGrpcTimeout(text); !ok || got != want {
			t.Errorf("parseGrpcTimeout(%q) = %v, %v", text, got, ok)
		}
	}
	for _, bad := range []string{"", "5", "123456789m", "5x", "-5m"} {
		if _, ok := parseGrpcTimeout(bad); ok {
			t.Errorf("parseGrpcTimeout(%q) accepted", bad)
		}
	}
	if got, _ := parseGrpcTimeout(formatGrpcTimeout(10 * time.Minute)); got != 10*time.Minute {
		t.Errorf("10m came back as %v", got)
	}
}

// A service as the gateway sees it: gRPC over h2c, answering what the test scripts.
type fakeService struct {
	mu       sync.Mutex
	requests map[string][]byte      // method path -> last request message
	headers  map[string]http.Header // method path -> its headers
	answer   func(w http.ResponseWriter, method string)
}

func (f *fakeService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	if len(body) >= 5 {
		f.requests[r.URL.Path] = body[5:]
	}
	f.headers[r.URL.Path] = r.Header.Clone()
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/grpc")
	w.Header().Set("Trailer", "Grpc-Status, Grpc-Message, Grpc-Status-Details-Bin")
	f.answer(w, r.URL.Path)
}

func grpcFrame(message []byte) []byte {
	frame := make([]byte, 5, 5+len(message))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(message)))
	return append(frame, message...)
}

type harness struct {
	t       *testing.T
	gateway *httptest.Server
	service *fakeService
	schemas map[string]protoreflect.ServiceDescriptor
	metrics *prometheus.Registry
	g       *gateway
}

func newHarness(t *testing.T, extraConfig map[string]any) *harness {
	return newHarnessWith(t, extraConfig, nil)
}

// newHarnessWith's service speaks HTTP/2 over TLS with `backendTLS` (h2c when nil).
func newHarnessWith(t *testing.T, extraConfig map[string]any, backendTLS *tls.Config) *harness {
	image := os.Getenv("HELPLINE_PROTO_IMAGE")
	if image == "" {
		t.Skip("HELPLINE_PROTO_IMAGE (the build's proto/helpline.binpb) is not set; ctest sets it")
	}
	service := &fakeService{requests: map[string][]byte{}, headers: map[string]http.Header{},
		answer: func(w http.ResponseWriter, _ string) { w.Write(grpcFrame(nil)); w.Header().Set("Grpc-Status", "0") }}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protocols http.Protocols
	backend := &http.Server{Handler: service, Protocols: &protocols, TLSConfig: backendTLS}
	if backendTLS == nil {
		protocols.SetUnencryptedHTTP2(true)
		go backend.Serve(listener)
	} else {
		protocols.SetHTTP2(true)
		go backend.ServeTLS(listener, "", "")
	}
	t.Cleanup(func() { backend.Close() })

	openapi := t.TempDir() + "/openapi.yaml"
	os.WriteFile(openapi, []byte("openapi: 3.0.3\n"), 0o644)
	settings := map[string]any{"gateway.descriptor_set": image, "gateway.openapi_file": openapi,
		"gateway.cors_origins": "https://app.example"}
	for _, b := range backendServices {
		settings["gateway."+b.name+"_target"] = listener.Addr().String()
	}
	for key, value := range extraConfig {
		settings[key] = value
	}
	data, _ := json.Marshal(settings)
	file := t.TempDir() + "/gateway.json"
	os.WriteFile(file, data, 0o644)
	config := gatewaySchema()
	if err := config.Load(file, nil); err != nil {
		t.Fatal(err)
	}
	registry := prometheus.NewRegistry()
	g, err := newGateway(config, slog.New(slog.NewTextHandler(io.Discard, nil)), registry)
	if err != nil {
		t.Fatal(err)
	}
	server := httptest.NewServer(g.handler)
	t.Cleanup(server.Close)
	schemas, _ := loadSchemas(image)
	return &harness{t: t, gateway: server, service: service, schemas: schemas, metrics: registry, g: g}
}

func (h *harness) message(name protoreflect.FullName) *dynamicpb.Message {
	for _, service := range h.schemas {
		methods := service.Methods()
		for i := 0; i < methods.Len(); i++ {
			for _, m := range []protoreflect.MessageDescriptor{methods.Get(i).Input(), methods.Get(i).Output()} {
				if m.FullName() == name {
					return dynamicpb.NewMessage(m)
				}
			}
		}
	}
	h.t.Fatalf("no message %s", name)
	return nil
}

func (f *fakeService) headersOf(method string) http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.headers[method]
}

func (f *fakeService) called(method string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.headers[method]
	return ok
}

func (h *harness) received(method string, name protoreflect.FullName) *dynamicpb.Message {
	h.service.mu.Lock()
	defer h.service.mu.Unlock()
	raw, ok := h.service.requests[method]
	if !ok {
		h.t.Fatalf("the service got no call of %s", method)
	}
	message := h.message(name)
	if err := proto.Unmarshal(raw, message); err != nil {
		h.t.Fatal(err)
	}
	return message
}

func (h *harness) do(method, path, contentType string, body []byte, headers map[string]string) (*http.Response, string) {
	request, _ := http.NewRequest(method, h.gateway.URL+path, bytes.NewReader(body))
	if contentType != "" {
		request.Header.Set("Content-Type", contentType)
	}
	for k, v := range headers {
		request.Header.Set(k, v)
	}
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		h.t.Fatal(err)
	}
	defer response.Body.Close()
	data, _ := io.ReadAll(response.Body)
	return response, string(data)
}

const search = "/helpline.catalog.v1.CatalogService/SearchExperts"

func TestRestQueryReachesTheServiceAsItsRequestWithTheTokenAndADeadline(t *testing.T) {
	h := newHarness(t, nil)
	response, body := h.do("GET", "/v1/experts?text=flat%20tyre&categoryId=bike-repair", "", nil,
		map[string]string{"Authorization": "Bearer token-1"})
	if response.StatusCode != 200 || !strings.Contains(body, `"hits":[]`) {
		t.Fatalf("GET /v1/experts: %d %s", response.StatusCode, body)
	}
	request := h.received(search, "helpline.catalog.v1.SearchExpertsRequest")
	fields := request.Descriptor().Fields()
	if got := request.Get(fields.ByName("text")).String(); got != "flat tyre" {
		t.Errorf("text = %q", got)
	}
	if got := request.Get(fields.ByName("category_id")).String(); got != "bike-repair" {
		t.Errorf("category_id = %q", got)
	}
	headers := h.service.headersOf(search)
	if got := headers.Get("Authorization"); got != "Bearer token-1" {
		t.Errorf("the service saw authorization %q", got)
	}
	if timeout, ok := parseGrpcTimeout(headers.Get("Grpc-Timeout")); !ok || timeout != 30*time.Second {
		t.Errorf("grpc-timeout %q, want the unary limit of 30s", headers.Get("Grpc-Timeout"))
	}
}

func TestAClientsLongerDeadlineIsCutToTheLimitAndAShorterOneKept(t *testing.T) {
	h := newHarness(t, map[string]any{"gateway.unary_timeout": "2s"})
	for asked, want := range map[string]time.Duration{"60000": 2 * time.Second, "500": 500 * time.Millisecond} {
		response, body := h.do("POST", search, "application/json", []byte(`{}`),
			map[string]string{"Connect-Protocol-Version": "1", "Connect-Timeout-Ms": asked})
		if response.StatusCode != 200 {
			t.Fatalf("%d %s", response.StatusCode, body)
		}
		if got, _ := parseGrpcTimeout(h.service.headersOf(search).Get("Grpc-Timeout")); got != want {
			t.Errorf("asked %s ms: the service got %v, want %v", asked, got, want)
		}
	}
}

func TestGrpcWebCallsAreServed(t *testing.T) {
	h := newHarness(t, nil)
	request := h.message("helpline.catalog.v1.SearchExpertsRequest")
	request.Set(request.Descriptor().Fields().ByName("language"), protoreflect.ValueOfString("de"))
	encoded, _ := proto.Marshal(request)
	response, body := h.do("POST", search, "application/grpc-web+proto", grpcFrame(encoded),
		map[string]string{"X-Grpc-Web": "1"})
	if response.StatusCode != 200 || !strings.Contains(strings.ToLower(body), "grpc-status: 0") {
		t.Fatalf("gRPC-Web: %d %q", response.StatusCode, body)
	}
	got := h.received(search, "helpline.catalog.v1.SearchExpertsRequest")
	if got.Get(got.Descriptor().Fields().ByName("language")).String() != "de" {
		t.Errorf("the service got %v", got)
	}
}

func TestAFieldErrorReachesEveryProtocolWithItsField(t *testing.T) {
	h := newHarness(t, nil)
	details, _ := anypb.New(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: "email", Description: "must be an email address"}}})
	status, _ := proto.Marshal(&statuspb.Status{Code: 3, Message: "email: must be an email address",
		Details: []*anypb.Any{details}})
	h.service.answer = func(w http.ResponseWriter, _ string) {
		w.Header().Set("Grpc-Status", "3")
		w.Header().Set("Grpc-Message", "email: must be an email address")
		w.Header().Set("Grpc-Status-Details-Bin", strings.TrimRight(base64Std(status), "="))
		w.WriteHeader(200)
	}
	response, body := h.do("POST", "/v1/auth/login", "application/json", []byte(`{"email": "x", "password": "y"}`), nil)
	if response.StatusCode != 400 || !strings.Contains(body, `"field":"email"`) ||
		!strings.Contains(body, "type.googleapis.com/google.rpc.BadRequest") {
		t.Errorf("REST: %d %s", response.StatusCode, body)
	}
	response, body = h.do("POST", "/helpline.identity.v1.IdentityService/Login", "application/json",
		[]byte(`{"email": "x"}`), map[string]string{"Connect-Protocol-Version": "1"})
	if response.StatusCode != 400 || !strings.Contains(body, `"code":"invalid_argument"`) ||
		!strings.Contains(body, `"type":"google.rpc.BadRequest"`) {
		t.Errorf("Connect: %d %s", response.StatusCode, body)
	}
}

func TestCorsAnswersConfiguredOriginsOnly(t *testing.T) {
	h := newHarness(t, nil)
	preflight := map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "authorization, content-type, connect-protocol-version"}
	response, _ := h.do("OPTIONS", search, "", nil, preflight)
	if response.StatusCode != 204 || response.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(response.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("allowed origin's preflight: %d %v", response.StatusCode, response.Header)
	}
	preflight["Origin"] = "https://evil.example"
	if response, _ := h.do("OPTIONS", search, "", nil, preflight); response.StatusCode != 403 ||
		response.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin's preflight: %d %v", response.StatusCode, response.Header)
	}
	preflight["Origin"], preflight["Access-Control-Request-Headers"] = "https://app.example", "x-secret"
	if response, _ := h.do("OPTIONS", search, "", nil, preflight); response.StatusCode != 403 {
		t.Errorf("a header not on the list: %d", response.StatusCode)
	}
	response, _ = h.do("POST", search, "application/json", []byte(`{}`),
		map[string]string{"Origin": "https://app.example", "Connect-Protocol-Version": "1"})
	if response.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(response.Header.Get("Access-Control-Expose-Headers"), "Grpc-Status-Details-Bin") {
		t.Errorf("the call itself: %v", response.Header)
	}
}

func TestARequestOverTheLimitIsRefusedBeforeAnyServiceSeesIt(t *testing.T) {
	h := newHarness(t, map[string]any{"gateway.max_request_bytes": 2048})
	body := []byte(`{"text": "` + strings.Repeat("a", 4096) + `"}`)
	response, text := h.do("POST", search, "application/json", body, map[string]string{"Connect-Protocol-Version": "1"})
	if response.StatusCode != 429 || !strings.Contains(text, "resource_exhausted") {
		t.Errorf("%d %s", response.StatusCode, text)
	}
	if h.service.called(search) {
		t.Error("the service was called")
	}
	if got := h.count("none", "none", "connect", "RESOURCE_EXHAUSTED"); got != 1 {
		t.Errorf("refusals counted: %v", got)
	}
}

func TestAServiceThatIsDownIsUnavailableAndCounted(t *testing.T) {
	h := newHarness(t, map[string]any{"gateway.catalog_target": "127.0.0.1:1"})
	response, body := h.do("POST", search, "application/json", []byte(`{}`), map[string]string{"Connect-Protocol-Version": "1"})
	if response.StatusCode != 503 || !strings.Contains(body, `"code":"unavailable"`) {
		t.Errorf("%d %s", response.StatusCode, body)
	}
	if got := h.count("catalog", "SearchExperts", "connect", "UNAVAILABLE"); got != 1 {
		t.Errorf("counted %v", got)
	}
}

func TestServerStreamsArriveMessageByMessage(t *testing.T) {
	h := newHarness(t, nil)
	release := make(chan struct{})
	h.service.answer = func(w http.ResponseWriter, _ string) {
		w.Write(grpcFrame(nil))
		w.(http.Flusher).Flush()
		<-release
		w.Write(grpcFrame(nil))
		w.Header().Set("Grpc-Status", "0")
	}
	response := h.watchOffers(context.Background())
	defer response.Body.Close()
	envelope := make([]byte, 5)
	if _, err := io.ReadFull(response.Body, envelope); err != nil || envelope[0] != 0 {
		t.Fatalf("first message's envelope: %q %v", envelope, err)
	}
	first := make([]byte, binary.BigEndian.Uint32(envelope[1:]))
	if _, err := io.ReadFull(response.Body, first); err != nil || !json.Valid(first) {
		t.Fatalf("the first message arrived before the second was sent: %q %v", first, err)
	}
	close(release)
	envelopes := readEnvelopes(t, response.Body)
	if len(envelopes) != 2 || envelopes[0].flags != 0 || envelopes[1].flags != 2 ||
		strings.TrimSpace(string(envelopes[1].data)) != "{}" {
		t.Errorf("want the second message, then a clean end of stream: %+v", envelopes)
	}
	if timeout, _ := parseGrpcTimeout(h.service.headersOf("/helpline.matching.v1.MatchingService/WatchOffers").Get("Grpc-Timeout")); timeout != 10*time.Minute {
		t.Errorf("a stream's deadline is %v, want the stream limit", timeout)
	}
}

// count is helpline_gateway_requests_total for these labels (0 when absent).
func (h *harness) count(service, method, protocol, code string) float64 {
	families, _ := h.metrics.Gather()
	for _, family := range families {
		if family.GetName() != "helpline_gateway_requests_total" {
			continue
		}
		for _, metric := range family.GetMetric() {
			labels := map[string]string{}
			for _, label := range metric.GetLabel() {
				labels[label.GetName()] = label.GetValue()
			}
			if labels["service"] == service && labels["method"] == method && labels["protocol"] == protocol &&
				labels["code"] == code {
				return metric.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func base64Std(data []byte) string {
	return fmt.Sprintf("%s", encodeBase64(data))
}

func encodeBase64(data []byte) string { return base64.StdEncoding.EncodeToString(data) }

func TestAServiceThatIsDownIsReportedButTheGatewayStaysReadyUntilItStops(t *testing.T) {
	h := newHarness(t, map[string]any{"gateway.payments_target": "127.0.0.1:1"})
	h.service.answer = func(w http.ResponseWriter, method string) {
		serving := byte(1)
		if method != "/grpc.health.v1.Health/Check" {
			serving = 0
		}
		w.Write(grpcFrame([]byte{0x08, serving}))
		w.Header().Set("Grpc-Status", "0")
	}
	h.g.health.checkAll(context.Background())
	response, body := h.do("GET", "/readyz", "", nil, nil)
	var ready struct {
		Ready      bool     `json:"ready"`
		NotServing []string `json:"not_serving"`
	}
	json.Unmarshal([]byte(body), &ready)
	if response.StatusCode != 200 || !ready.Ready || len(ready.NotServing) != 1 || ready.NotServing[0] != "payments" {
		t.Errorf("/readyz with payments down: %d %s", response.StatusCode, body)
	}
	if up := testutil.ToFloat64(h.g.health.up.WithLabelValues("payments")); up != 0 {
		t.Errorf("payments up = %v", up)
	}
	if up := testutil.ToFloat64(h.g.health.up.WithLabelValues("catalog")); up != 1 {
		t.Errorf("catalog up = %v", up)
	}
	h.g.health.shuttingDown.Store(true)
	if response, body := h.do("GET", "/readyz", "", nil, nil); response.StatusCode != 503 {
		t.Errorf("/readyz while shutting down: %d %s", response.StatusCode, body)
	}
}

type envelope struct {
	flags byte
	data  []byte
}

// readEnvelopes reads Connect streaming envelopes to the end of the body.
func readEnvelopes(t *testing.T, body io.Reader) []envelope {
	var out []envelope
	for {
		prefix := make([]byte, 5)
		if _, err := io.ReadFull(body, prefix); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatalf("the stream broke off: %v (after %+v)", err, out)
		}
		data := make([]byte, binary.BigEndian.Uint32(prefix[1:]))
		if _, err := io.ReadFull(body, data); err != nil {
			t.Fatalf("the stream broke off in a message: %v", err)
		}
		out = append(out, envelope{prefix[0], data})
	}
}

func TestACompressedRequestIsRefusedBeforeAnyServiceSeesIt(t *testing.T) {
	h := newHarness(t, nil)
	for _, header := range []map[string]string{
		{"Connect-Protocol-Version": "1", "Content-Encoding": "gzip"},
		{"Grpc-Encoding": "gzip", "X-Grpc-Web": "1"},
	} {
		contentType := "application/json"
		if header["X-Grpc-Web"] != "" {
			contentType = "application/grpc-web+proto"
		}
		response, body := h.do("POST", search, contentType, []byte("\x1f\x8b"), header)
		if contentType == "application/json" && (response.StatusCode != 501 || !strings.Contains(body, "uncompressed")) {
			t.Errorf("Connect with gzip: %d %s", response.StatusCode, body)
		}
		if contentType != "application/json" && response.Header.Get("Grpc-Status") != "12" {
			t.Errorf("gRPC-Web with gzip: %d %v %s", response.StatusCode, response.Header, body)
		}
	}
	if h.service.called(search) {
		t.Error("the service was called")
	}
}

func TestABodyThatGrowsPastTheLimitIsTheCallersFaultNotTheServices(t *testing.T) {
	h := newHarness(t, map[string]any{"gateway.max_request_bytes": 2048})
	body := `{"text": "` + strings.Repeat("a", 8192) + `"}`
	request, _ := http.NewRequest("POST", h.gateway.URL+search, io.MultiReader(strings.NewReader(body)))
	request.ContentLength = -1 // sent chunked: the size is learnt as it arrives
	request.Header.Set("Content-Type", "application/json")
	request.Header.Set("Connect-Protocol-Version", "1")
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(response.Body)
	response.Body.Close()
	if response.StatusCode != 429 || !strings.Contains(string(text), "resource_exhausted") {
		t.Errorf("an oversized body sent chunked: %d %s", response.StatusCode, text)
	}
	if got := h.count("catalog", "SearchExperts", "connect", "UNAVAILABLE"); got != 0 {
		t.Errorf("counted against catalog as UNAVAILABLE: %v", got)
	}
}

func TestUnknownQueryParametersDoNotBreakARestCall(t *testing.T) {
	h := newHarness(t, nil)
	response, body := h.do("GET", "/v1/categories?_=1701&utm_source=mail", "", nil, nil)
	if response.StatusCode != 200 {
		t.Errorf("%d %s", response.StatusCode, body)
	}
}

func TestAStatusInTheTrailersIsCounted(t *testing.T) {
	h := newHarness(t, nil)
	h.service.answer = func(w http.ResponseWriter, _ string) {
		w.Write(grpcFrame(nil))
		w.Header().Set("Grpc-Status", "9")
		w.Header().Set("Grpc-Message", "not now")
	}
	response, body := h.do("POST", search, "application/json", []byte(`{}`), map[string]string{"Connect-Protocol-Version": "1"})
	if response.StatusCode != 400 || !strings.Contains(body, "failed_precondition") {
		t.Errorf("%d %s", response.StatusCode, body)
	}
	if got := h.count("catalog", "SearchExperts", "connect", "FAILED_PRECONDITION"); got != 1 {
		t.Errorf("counted %v", got)
	}
}

func TestAnOriginNotAllowedGetsNoCorsHeadersOnItsCalls(t *testing.T) {
	h := newHarness(t, nil)
	response, _ := h.do("POST", search, "application/json", []byte(`{}`),
		map[string]string{"Origin": "https://evil.example", "Connect-Protocol-Version": "1"})
	if got := response.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("Access-Control-Allow-Origin %q for an origin not configured", got)
	}
}

func TestTheGatewaysOwnHealthCheckKnowsItsNames(t *testing.T) {
	h := newHarness(t, nil)
	ask := func(service string) (string, string) {
		message := protowire.AppendTag(nil, 1, protowire.BytesType)
		message = protowire.AppendString(message, service)
		response, body := h.do("POST", "/grpc.health.v1.Health/Check", "application/grpc", grpcFrame(message), nil)
		status := response.Trailer.Get("Grpc-Status")
		if status == "" {
			status = response.Header.Get("Grpc-Status")
		}
		return status, body
	}
	if status, body := ask(""); status != "0" || body != string(grpcFrame([]byte{0x08, 1})) {
		t.Errorf("readiness: %s %q", status, body)
	}
	if status, _ := ask("no.such.Service"); status != "5" {
		t.Errorf("an unknown name: %s, want NOT_FOUND", status)
	}
	h.g.health.shuttingDown.Store(true)
	if status, body := ask(""); status != "0" || body != string(grpcFrame([]byte{0x08, 2})) {
		t.Errorf("readiness while stopping: %s %q", status, body)
	}
	if status, body := ask("helpline.liveness"); status != "0" || body != string(grpcFrame([]byte{0x08, 1})) {
		t.Errorf("liveness while stopping: %s %q", status, body)
	}
}

func TestStreamsEndCleanlyWithUnavailableWhenTheGatewayStops(t *testing.T) {
	h := newHarness(t, nil)
	h.service.answer = func(w http.ResponseWriter, _ string) {
		w.Write(grpcFrame(nil))
		w.(http.Flusher).Flush()
		time.Sleep(30 * time.Second) // an expert waiting for offers
	}
	response := h.watchOffers(context.Background())
	defer response.Body.Close()
	first := make([]byte, 5)
	io.ReadFull(response.Body, first)
	io.ReadFull(response.Body, make([]byte, binary.BigEndian.Uint32(first[1:])))
	h.g.stop()
	done := make(chan []envelope)
	go func() { done <- readEnvelopes(t, response.Body) }()
	select {
	case envelopes := <-done:
		if len(envelopes) != 1 || envelopes[0].flags != 2 || !strings.Contains(string(envelopes[0].data), `"unavailable"`) {
			t.Errorf("want a clean end of stream with unavailable: %+v", envelopes)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream stayed open after the gateway began to stop")
	}
	if got := h.count("matching", "WatchOffers", "connect", "UNAVAILABLE"); got != 1 {
		t.Errorf("counted %v", got)
	}
}

func TestAStreamTheCallerClosesIsCounted(t *testing.T) {
	h := newHarness(t, nil)
	h.service.answer = func(w http.ResponseWriter, _ string) {
		w.Write(grpcFrame(nil))
		w.(http.Flusher).Flush()
		time.Sleep(30 * time.Second)
	}
	ctx, cancel := context.WithCancel(context.Background())
	response := h.watchOffers(ctx)
	io.ReadFull(response.Body, make([]byte, 5))
	cancel() // the browser tab closes
	response.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if h.count("matching", "WatchOffers", "connect", "CANCELLED") == 1 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Error("a stream its caller closed was not counted as CANCELLED")
}

func TestCallsWithoutATokenAreLimitedPerClientAddress(t *testing.T) {
	h := newHarness(t, map[string]any{"gateway.anonymous_calls_per_minute_per_client": 5,
		"gateway.trusted_proxies": "127.0.0.0/8"})
	login := func(client string, token string) int {
		headers := map[string]string{"X-Forwarded-For": client}
		if token != "" {
			headers["Authorization"] = "Bearer " + token
		}
		response, _ := h.do("POST", "/v1/auth/login", "application/json", []byte(`{}`), headers)
		return response.StatusCode
	}
	if first, second := login("203.0.113.7", ""), login("203.0.113.7", ""); first != 200 || second != 429 {
		t.Errorf("one client's two sign-ins in a row (a burst of 1): %d then %d", first, second)
	}
	if got := login("203.0.113.7", "made-up"); got != 429 {
		t.Errorf("a made-up token does not lift the limit on sign-in: %d", got)
	}
	if got := login("198.51.100.9", ""); got != 200 {
		t.Errorf("another client is not limited by the first: %d", got)
	}
	if got := login("203.0.113.7, 198.51.100.10", ""); got != 200 {
		t.Errorf("the address the trusted proxy saw counts, not what the caller wrote before it: %d", got)
	}
	h.service.mu.Lock()
	forwarded := h.service.headers["/helpline.identity.v1.IdentityService/Login"].Get("X-Forwarded-For")
	h.service.mu.Unlock()
	if forwarded != "198.51.100.10" {
		t.Errorf("the service was told X-Forwarded-For %q, want the client the gateway counted", forwarded)
	}
	response, _ := h.do("GET", "/v1/categories", "", nil, map[string]string{"X-Forwarded-For": "203.0.113.7",
		"Authorization": "Bearer aaa.bbb.ccc"})
	if response.StatusCode != 200 {
		t.Errorf("a call with a token is the services' to limit: %d", response.StatusCode)
	}
	response, _ = h.do("GET", "/v1/categories", "", nil, map[string]string{"X-Forwarded-For": "203.0.113.7",
		"Authorization": "Bearer made-up"})
	if response.StatusCode != 429 {
		t.Errorf("a header that is no token does not lift the limit: %d", response.StatusCode)
	}
}

func TestAnUntrustedPeersForwardedForIsIgnored(t *testing.T) {
	limiter, _ := newAnonymousLimiter(60, []string{"10.0.0.0/8"})
	request := httptest.NewRequest("POST", "/", nil)
	request.RemoteAddr = "192.0.2.1:5555"
	request.Header.Set("X-Forwarded-For", "203.0.113.7")
	if got := limiter.clientAddress(request); got != "192.0.2.1" {
		t.Errorf("client %q, want the peer", got)
	}
	request.RemoteAddr = "10.1.2.3:5555"
	request.Header.Set("X-Forwarded-For", "203.0.113.7, 10.9.9.9")
	if got := limiter.clientAddress(request); got != "203.0.113.7" {
		t.Errorf("client %q, want the last address before the trusted proxies", got)
	}
	request.Header.Set("X-Forwarded-For", "10.240.0.5:4711, 10.9.9.9")
	if got := limiter.clientAddress(request); got != "10.240.0.5" {
		t.Errorf("client %q, want the first hop when every hop is trusted", got)
	}
	request.Header.Set("X-Forwarded-For", "[2001:db8:1:2:aaaa::1]:443")
	if got := limiter.clientAddress(request); got != "2001:db8:1:2::/64" {
		t.Errorf("client %q, want the IPv6 client's /64", got)
	}
	strict, _ := newAnonymousLimiter(5, nil) // a burst of 1
	first := httptest.NewRequest("POST", "/", nil)
	first.RemoteAddr = "[2001:db8:1:2::1]:1"
	second := httptest.NewRequest("POST", "/", nil)
	second.RemoteAddr = "[2001:db8:1:2::2]:1"
	if !strict.Allow(strict.clientAddress(first), time.Unix(0, 0)) ||
		strict.Allow(strict.clientAddress(second), time.Unix(0, 0)) {
		t.Error("a second address of the same /64 got a bucket of its own")
	}
}

func TestThePageServesItsFilesOnly(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(root+"/index.html", []byte("<h1>page</h1>"), 0o644)
	os.Mkdir(root+"/assets", 0o755)
	os.WriteFile(root+"/assets/app.js", []byte("1"), 0o644)
	page := httptest.NewServer(webPage(root, "http://127.0.0.1:8080"))
	defer page.Close()
	get := func(path string) (*http.Response, string) {
		response, err := http.Get(page.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer response.Body.Close()
		body, _ := io.ReadAll(response.Body)
		return response, string(body)
	}
	if response, body := get("/"); response.StatusCode != 200 || body != "<h1>page</h1>" ||
		!strings.Contains(response.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		!strings.Contains(response.Header.Get("Content-Security-Policy"), "connect-src 'self' http://127.0.0.1:8080") {
		t.Errorf("/: %d %q %v", response.StatusCode, body, response.Header)
	}
	if _, body := get("/gateway.json"); !strings.Contains(body, `"url":"http://127.0.0.1:8080"`) {
		t.Errorf("gateway.json: %s", body)
	}
	for _, path := range []string{"/assets/", "/assets", "/../index.html", "/missing.js"} {
		if response, body := get(path); response.StatusCode != 404 && response.StatusCode != 400 {
			t.Errorf("%s: %d %q", path, response.StatusCode, body)
		}
	}
}

func TestThePageNeedsItsFolder(t *testing.T) {
	file := t.TempDir() + "/gateway.json"
	os.WriteFile(file, []byte(`{"gateway": {"web_listen": "127.0.0.1:0", "descriptor_set": "`+
		os.Getenv("HELPLINE_PROTO_IMAGE")+`"}}`), 0o644)
	if os.Getenv("HELPLINE_PROTO_IMAGE") == "" {
		t.Skip("HELPLINE_PROTO_IMAGE is not set; ctest sets it")
	}
	config := gatewaySchema()
	if err := config.Load(file, nil); err != nil {
		t.Fatal(err)
	}
	openapi := t.TempDir() + "/openapi.yaml"
	os.WriteFile(openapi, []byte("openapi: 3.0.3\n"), 0o644)
	config.set("gateway.openapi_file", openapi)
	_, err := newGateway(config, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err == nil || !strings.Contains(err.Error(), "gateway.web_root") {
		t.Errorf("web_listen without web_root: %v", err)
	}
}

func TestARequestThatIsNoValidMessageIsTheCallersErrorAndNeverReachesTheService(t *testing.T) {
	h := newHarness(t, nil)
	response, body := h.do("POST", search, "application/grpc-web+proto", grpcFrame([]byte{0xff, 0xff, 0xff}),
		map[string]string{"X-Grpc-Web": "1"})
	if response.Header.Get("Grpc-Status") != "3" && !strings.Contains(strings.ToLower(body), "grpc-status: 3") {
		t.Errorf("garbage: %d %v %q", response.StatusCode, response.Header, body)
	}
	compressed := grpcFrame(nil)
	compressed[0] = 1
	response, body = h.do("POST", search, "application/grpc-web+proto", compressed, map[string]string{"X-Grpc-Web": "1"})
	if response.Header.Get("Grpc-Status") != "12" && !strings.Contains(strings.ToLower(body), "grpc-status: 12") {
		t.Errorf("a compressed message: %d %v %q", response.StatusCode, response.Header, body)
	}
	if h.service.called(search) {
		t.Error("the service was called")
	}
	if got := h.count("catalog", "SearchExperts", "grpc_web", "INVALID_ARGUMENT"); got != 1 {
		t.Errorf("counted as the caller's INVALID_ARGUMENT: %v", got)
	}
	response, body = h.do("GET", "/v1/experts?categoryId=%ff", "", nil, nil)
	if response.StatusCode != 400 || !strings.Contains(body, "UTF-8") {
		t.Errorf("a query that is not UTF-8: %d %s", response.StatusCode, body)
	}
}

func TestAStreamAskedForWhileTheGatewayStopsGoesElsewhere(t *testing.T) {
	h := newHarness(t, nil)
	h.g.stop()
	response, body := h.do("POST", "/helpline.matching.v1.MatchingService/WatchOffers", "application/connect+json",
		grpcFrame([]byte("{}")), nil)
	if response.StatusCode != 200 || !strings.Contains(body, `"unavailable"`) {
		t.Errorf("%d %q", response.StatusCode, body)
	}
}

func TestABodyThatNeverComesDoesNotHoldTheConnection(t *testing.T) {
	h := newHarness(t, map[string]any{"gateway.unary_timeout": "2s"})
	for _, path := range []string{search, "/grpc.health.v1.Health/Check", "/readyz"} {
		connection, err := net.Dial("tcp", strings.TrimPrefix(h.gateway.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(connection, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
			"Connect-Protocol-Version: 1\r\nContent-Length: 100\r\n\r\n{", path)
		connection.SetReadDeadline(time.Now().Add(10 * time.Second))
		started := time.Now()
		io.ReadAll(connection)
		if waited := time.Since(started); waited > 5*time.Second {
			t.Errorf("%s: the connection stayed open %v for a body that never came", path, waited)
		}
		connection.Close()
	}
	if got := h.count("catalog", "SearchExperts", "connect", "DEADLINE_EXCEEDED"); got != 0 {
		t.Errorf("a slow body counted as the service's DEADLINE_EXCEEDED: %v", got)
	}
}

// watchOffers opens WatchOffers over Connect streaming (JSON).
func (h *harness) watchOffers(ctx context.Context) *http.Response {
	request, _ := http.NewRequestWithContext(ctx, "POST",
		h.gateway.URL+"/helpline.matching.v1.MatchingService/WatchOffers", bytes.NewReader(grpcFrame([]byte("{}"))))
	request.Header.Set("Content-Type", "application/connect+json")
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		h.t.Fatal(err)
	}
	return response
}

// testPKI is a CA and what it signed: a certificate for 127.0.0.1 (the
// services') and a client certificate (the gateway's), as PEM files.
type testPKI struct {
	caFile, clientCertFile, clientKeyFile string
	pool                                  *x509.CertPool
	server                                tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	dir := t.TempDir()
	write := func(name, kind string, der []byte) string {
		path := dir + "/" + name
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	newKey := func() *ecdsa.PrivateKey {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	caKey := newKey()
	caTemplate := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		key := newKey()
		template := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	pki := testPKI{caFile: write("ca.pem", "CERTIFICATE", caDER), pool: x509.NewCertPool()}
	pki.pool.AddCert(ca)
	serverDER, serverKey := leaf(2, x509.ExtKeyUsageServerAuth)
	pki.server = tls.Certificate{Certificate: [][]byte{serverDER}, PrivateKey: serverKey}
	clientDER, clientKey := leaf(3, x509.ExtKeyUsageClientAuth)
	pki.clientCertFile = write("client.pem", "CERTIFICATE", clientDER)
	keyDER, _ := x509.MarshalECPrivateKey(clientKey)
	pki.clientKeyFile = write("client.key", "EC PRIVATE KEY", keyDER)
	return pki
}

func TestTheServicesAreCalledOverMutualTlsWhenConfigured(t *testing.T) {
	pki := newTestPKI(t)
	backendTLS := &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	h := newHarnessWith(t, map[string]any{"gateway.backend_tls.ca_file": pki.caFile,
		"gateway.backend_tls.cert_file": pki.clientCertFile, "gateway.backend_tls.key_file": pki.clientKeyFile,
		"tls.required": true}, backendTLS)
	response, body := h.do("POST", search, "application/json", []byte(`{}`), map[string]string{"Connect-Protocol-Version": "1"})
	if response.StatusCode != 200 || !h.service.called(search) {
		t.Fatalf("over mutual TLS: %d %s", response.StatusCode, body)
	}

	// Without the gateway's certificate the service does not serve it.
	plain := newHarnessWith(t, map[string]any{"gateway.backend_tls.ca_file": pki.caFile}, backendTLS)
	response, body = plain.do("POST", search, "application/json", []byte(`{}`), map[string]string{"Connect-Protocol-Version": "1"})
	if response.StatusCode != 503 || plain.service.called(search) {
		t.Errorf("without a client certificate: %d %s", response.StatusCode, body)
	}
}

func TestPlaintextToTheServicesIsRefusedWhereTlsIsRequired(t *testing.T) {
	config := gatewaySchema()
	if err := config.set("tls.required", "true"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := backendTransport(config); err == nil || !strings.Contains(err.Error(), "gateway.backend_tls.ca_file") {
		t.Errorf("no CA with tls.required: %v", err)
	}
	config.set("gateway.backend_tls.ca_file", t.TempDir()+"/none.pem")
	if _, _, err := backendTransport(config); err == nil || !strings.Contains(err.Error(), "cannot read") {
		t.Errorf("a CA file that does not exist: %v", err)
	}
	if err := config.set("tls.required", "maybe"); err == nil {
		t.Error("tls.required took \"maybe\"")
	}
}

func TestARenewedCertificateOnDiskIsUsedForNewConnections(t *testing.T) {
	serve := func(pki testPKI) *httptest.Server {
		server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, r.Proto)
		}))
		server.EnableHTTP2 = true
		server.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server}}
		server.StartTLS()
		t.Cleanup(server.Close)
		return server
	}
	first, second := newTestPKI(t), newTestPKI(t)
	before, after := serve(first), serve(second)
	live := t.TempDir() + "/ca.pem"
	copyFile := func(from string) {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(live, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(first.caFile)
	config := gatewaySchema()
	config.set("gateway.backend_tls.ca_file", live)
	roundTripper, scheme, err := backendTransport(config)
	if err != nil || scheme != "https" {
		t.Fatalf("%v %s", err, scheme)
	}
	get := func(server *httptest.Server) (string, error) {
		response, err := (&http.Client{Transport: roundTripper}).Get(server.URL)
		if err != nil {
			return "", err
		}
		defer response.Body.Close()
		body, _ := io.ReadAll(response.Body)
		return string(body), nil
	}
	if proto, err := get(before); err != nil || proto != "HTTP/2.0" {
		t.Fatalf("the first CA's service: %q %v", proto, err)
	}
	if _, err := get(after); err == nil {
		t.Fatal("a service of a CA not configured was trusted")
	}

	copyFile(second.caFile) // the Secret's volume is updated in place
	roundTripper.(*reloadingTransport).every = 0
	if proto, err := get(after); err != nil || proto != "HTTP/2.0" {
		t.Errorf("after the renewal: %q %v", proto, err)
	}
	if _, err := get(before); err == nil {
		t.Error("the old CA is still trusted after the renewal")
	}
}
