package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// managementRoutes is every route the admin listener serves, as registered
// ("METHOD pattern"). Registering a route means adding it here, and the test
// below then requires it in openapi.json.
var managementRoutes = []string{
	"GET /livez",
	"GET /healthz",
	"GET /readyz",
	"GET /metrics",
	"GET /v1/openapi.json",
	"GET /v1/apis",
	"GET /v1/apis/{id}",
	"PUT /v1/apis/{id}",
	"DELETE /v1/apis/{id}",
	"POST /v1/apis/{id}/keys",
	"DELETE /v1/apis/{id}/keys/{keyId}",
	"POST /v1/apis/{id}/subscriptions",
	"GET /v1/apis/{id}/subscriptions",
	"GET /v1/subscriptions/{id}",
	"DELETE /v1/subscriptions/{id}",
	"POST /v1/subscriptions/{id}/resume",
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// servedOpenAPI fetches the document the way a client does.
func servedOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	h := Handler(Options{Ready: func() bool { return true }})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /v1/openapi.json: %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET /v1/openapi.json: Content-Type %q", ct)
	}
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("not an OpenAPI 3.1 document: openapi = %v", doc["openapi"])
	}
	return doc
}

// The route list above is what the handlers really register: each entry
// reaches a handler under exactly that pattern. The /v1 resource handlers
// are registered on a bare mux with nil dependencies, which registering
// never touches.
func TestManagementRoutesAreRegistered(t *testing.T) {
	v1 := http.NewServeMux()
	(&apisHandler{}).register(v1)
	(&keysHandler{}).register(v1)
	(&subscriptionsHandler{}).register(v1)
	top := Handler(Options{Ready: func() bool { return true }, Metrics: prometheus.NewRegistry()})

	for _, route := range managementRoutes {
		method, path, _ := strings.Cut(route, " ")
		target := pathParam.ReplaceAllString(path, "x")
		switch {
		case strings.HasPrefix(path, "/v1/") && path != "/v1/openapi.json":
			_, pattern := v1.Handler(httptest.NewRequest(method, target, nil))
			if pattern != route {
				t.Errorf("%s: the handlers register no such route (matched %q)", route, pattern)
			}
		default:
			rec := httptest.NewRecorder()
			top.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
			if rec.Code != http.StatusOK {
				t.Errorf("%s: %d, want 200", route, rec.Code)
			}
		}
	}
}

// The OpenAPI document is served, is OpenAPI 3.1 JSON, and documents every
// route the management API has, with its method, and nothing else.
func TestOpenAPIListsRoutes(t *testing.T) {
	paths, _ := servedOpenAPI(t)["paths"].(map[string]any)
	if len(paths) == 0 {
		t.Fatal("the document has no paths")
	}
	for _, route := range managementRoutes {
		method, path, _ := strings.Cut(route, " ")
		item, ok := paths[path].(map[string]any)
		if !ok {
			t.Errorf("%s: the document lacks the path %s", route, path)
			continue
		}
		if _, ok := item[strings.ToLower(method)].(map[string]any); !ok {
			t.Errorf("%s: the path is documented without the %s operation", route, method)
		}
	}
	for path, v := range paths {
		for key := range v.(map[string]any) {
			if !isOperation(key) {
				continue
			}
			if route := strings.ToUpper(key) + " " + path; !slices.Contains(managementRoutes, route) {
				t.Errorf("the document describes %s, which is not served", route)
			}
		}
	}
}

// Every path parameter is declared, every declared path parameter is in the
// path, and every /v1 operation that needs the token says it can answer 401.
func TestOpenAPIOperationsAreComplete(t *testing.T) {
	doc := servedOpenAPI(t)
	for path, v := range doc["paths"].(map[string]any) {
		item := v.(map[string]any)
		var inPath []string
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			inPath = append(inPath, m[1])
		}
		shared := pathParams(t, doc, item["parameters"])
		for key, op := range item {
			if !isOperation(key) {
				continue
			}
			op := op.(map[string]any)
			declared := append(pathParams(t, doc, op["parameters"]), shared...)
			for _, name := range inPath {
				if !slices.Contains(declared, name) {
					t.Errorf("%s %s: path parameter %q is not declared", key, path, name)
				}
			}
			for _, name := range declared {
				if !slices.Contains(inPath, name) {
					t.Errorf("%s %s: declares path parameter %q that the path lacks", key, path, name)
				}
			}
			responses, _ := op["responses"].(map[string]any)
			if len(responses) == 0 {
				t.Errorf("%s %s: no responses", key, path)
			}
			security, overridden := op["security"].([]any)
			needsToken := strings.HasPrefix(path, "/v1/") && (!overridden || len(security) > 0)
			if _, ok := responses["401"]; needsToken && !ok {
				t.Errorf("%s %s: behind the admin token but documents no 401", key, path)
			}
		}
	}
}

// Every $ref in the document points at something that exists.
func TestOpenAPIRefsResolve(t *testing.T) {
	doc := servedOpenAPI(t)
	refs := 0
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if k == "$ref" {
					refs++
					ref, _ := child.(string)
					if _, err := resolve(doc, ref); err != nil {
						t.Errorf("%s: $ref %q: %v", where, ref, err)
					}
					continue
				}
				walk(where+"/"+k, child)
			}
		case []any:
			for i, child := range v {
				walk(where+"/"+strconv.Itoa(i), child)
			}
		}
	}
	walk("#", doc)
	if refs == 0 {
		t.Fatal("found no $ref at all: the walk is broken")
	}
	// The checker itself must catch a dangling reference.
	if _, err := resolve(doc, "#/components/schemas/NoSuchSchema"); err == nil {
		t.Error("a reference to a missing schema resolved")
	}
}

func isOperation(key string) bool {
	switch key {
	case "get", "put", "post", "delete", "options", "head", "patch", "trace":
		return true
	}
	return false
}

// pathParams returns the names of the path parameters in a parameters list,
// following $refs.
func pathParams(t *testing.T, doc map[string]any, list any) []string {
	t.Helper()
	var names []string
	params, _ := list.([]any)
	for _, p := range params {
		param, _ := p.(map[string]any)
		if ref, ok := param["$ref"].(string); ok {
			target, err := resolve(doc, ref)
			if err != nil {
				continue // reported by TestOpenAPIRefsResolve
			}
			param, _ = target.(map[string]any)
		}
		if param["in"] == "path" {
			name, _ := param["name"].(string)
			names = append(names, name)
		}
	}
	return names
}

// resolve follows a local JSON Pointer reference ("#/a/b") within doc.
func resolve(doc map[string]any, ref string) (any, error) {
	pointer, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("not a local reference")
	}
	var at any = doc
	for _, token := range strings.Split(pointer, "/") {
		token = strings.NewReplacer("~1", "/", "~0", "~").Replace(token)
		obj, ok := at.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%q is inside something that is not an object", token)
		}
		if at, ok = obj[token]; !ok {
			return nil, fmt.Errorf("no %q", token)
		}
	}
	return at, nil
}
