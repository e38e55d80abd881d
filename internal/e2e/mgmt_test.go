package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/server"
	"github.com/sluicegw/sluice/internal/testutil/gatewaytest"
	"github.com/sluicegw/sluice/internal/testutil/ssetest"
	"github.com/sluicegw/sluice/plugins"
)

func adminDo(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The management API deploys, shows and removes APIs at run time, behind
// the admin token, and refuses invalid documents with file:line:col.
func TestManagementAPIs(t *testing.T) {
	k := newKafka(t, 1, "orders")
	cfg := strings.Replace(kafkaAPI(k.ListenAddrs()[0], "latest", ""), `admin: {listen: "off"}`, `admin: {listen: "127.0.0.1:0", token: s3cret}`, 1)
	gw := gatewaytest.Start(t, cfg)
	admin := "http://" + gw.AdminAddr()

	if code, _ := adminDo(t, http.MethodGet, admin+"/v1/apis", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("without the token: %d, want 401", code)
	}
	if code, body := adminDo(t, http.MethodPut, admin+"/v1/apis/pets", "s3cret", mockAPI("pets", "/pets", "hi")); code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", code, body)
	}
	if p := getJSON(t, "http://"+gw.Addr()+"/pets"); len(p.Items) != 1 || p.Items[0].Content != "hi" {
		t.Fatalf("deployed API served %+v", p.Items)
	}
	code, body := adminDo(t, http.MethodGet, admin+"/v1/apis/pets", "s3cret", "")
	var got struct {
		ID        string `json:"id"`
		Listeners []struct {
			Paths []string `json:"paths"`
		} `json:"listeners"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil || got.ID != "pets" || got.Listeners[0].Paths[0] != "/pets" {
		t.Fatalf("GET: %d %s", code, body)
	}
	// A misspelled key is a 400 problem naming line and column.
	bad := strings.Replace(mockAPI("pets", "/pets", "x"), "messageContent", "messageContnet", 1)
	if code, body := adminDo(t, http.MethodPut, admin+"/v1/apis/pets", "s3cret", bad); code != http.StatusBadRequest || !strings.Contains(body, "request body:") {
		t.Fatalf("invalid PUT: %d %s", code, body)
	}
	// API keys: shown once at creation, prefixed, removable.
	code, body = adminDo(t, http.MethodPost, admin+"/v1/apis/pets/keys", "s3cret", "")
	var key struct{ ID, Key string }
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &key) != nil || !strings.HasPrefix(key.Key, "sk_") || len(key.Key) < 40 || key.ID == "" {
		t.Fatalf("POST key: %d %s", code, body)
	}
	if code, _ := adminDo(t, http.MethodPost, admin+"/v1/apis/nosuch/keys", "s3cret", ""); code != http.StatusNotFound {
		t.Fatalf("key for an unknown API: %d", code)
	}
	if code, _ := adminDo(t, http.MethodDelete, admin+"/v1/apis/pets/keys/"+key.ID, "s3cret", ""); code != http.StatusNoContent {
		t.Fatalf("DELETE key: %d", code)
	}
	if code, _ := adminDo(t, http.MethodDelete, admin+"/v1/apis/pets/keys/"+key.ID, "s3cret", ""); code != http.StatusNotFound {
		t.Fatalf("DELETE key twice: %d", code)
	}
	// The file's APIs are the file's.
	if code, _ := adminDo(t, http.MethodDelete, admin+"/v1/apis/orders", "s3cret", ""); code != http.StatusConflict {
		t.Fatalf("DELETE of a file API: %d, want 409", code)
	}
	if code, _ := adminDo(t, http.MethodDelete, admin+"/v1/apis/pets", "s3cret", ""); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d", code)
	}
	if code, _ := adminDo(t, http.MethodDelete, admin+"/v1/apis/pets", "s3cret", ""); code != http.StatusNotFound {
		t.Fatalf("second DELETE: %d, want 404", code)
	}
}

// An API deployed through the management API survives a restart of the
// gateway (embedded store under dataDir).
func TestManagedAPISurvivesRestart(t *testing.T) {
	dataDir := t.TempDir()
	yaml := fmt.Sprintf(`
server:
  http: {listen: "127.0.0.1:0"}
  admin: {listen: "127.0.0.1:0"}
  dataDir: %q
apis: []
`, dataDir)
	start := func() *server.Server {
		cfg, err := config.Parse("restart.yaml", []byte(yaml), plugins.Default)
		if err != nil {
			t.Fatal(err)
		}
		srv, err := server.New(context.Background(), cfg, server.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		return srv
	}
	first := start()
	if code, body := adminDo(t, http.MethodPut, "http://"+first.AdminAddr()+"/v1/apis/pets", "", mockAPI("pets", "/pets", "kept")); code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", code, body)
	}
	if err := first.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	second := start()
	t.Cleanup(func() { _ = second.Shutdown(context.Background()) })
	if p := getJSON(t, "http://"+second.Addr()+"/pets"); len(p.Items) != 1 || p.Items[0].Content != "kept" {
		t.Fatalf("after a restart the API serves %+v", p.Items)
	}
	// And a DELETE is remembered too.
	if code, _ := adminDo(t, http.MethodDelete, "http://"+second.AdminAddr()+"/v1/apis/pets", "", ""); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d", code)
	}
}

// Issue 4, must show 6: PUT /v1/apis/{id} deploys a new API while an SSE
// client of another API stays connected and keeps receiving.
func TestPutKeepsOtherSSEClientReceiving(t *testing.T) {
	k := newKafka(t, 1, "orders")
	addr := k.ListenAddrs()[0]
	cfg := strings.Replace(kafkaAPI(addr, "latest", ""), `admin: {listen: "off"}`, `admin: {listen: "127.0.0.1:0", token: s3cret}`, 1)
	gw := gatewaytest.Start(t, cfg)
	c := ssetest.Open(t, "http://"+gw.Addr()+"/orders", nil)
	produce(t, addr, "orders", "before")
	if ev := c.Next(t, 20*time.Second); ev.Data != "before" {
		t.Fatalf("got %q", ev.Data)
	}
	for _, version := range []string{"v1", "v2"} { // a deploy, then a redeploy
		if code, body := adminDo(t, http.MethodPut, "http://"+gw.AdminAddr()+"/v1/apis/pets", "s3cret", mockAPI("pets", "/pets", version)); code/100 != 2 {
			t.Fatalf("PUT %s: %d %s", version, code, body)
		}
		if p := getJSON(t, "http://"+gw.Addr()+"/pets"); len(p.Items) != 1 || p.Items[0].Content != version {
			t.Fatalf("PUT %s: the new API serves %+v", version, p.Items)
		}
	}
	produce(t, addr, "orders", "after")
	if ev := c.Next(t, 20*time.Second); ev.Event != "message" || ev.Data != "after" {
		t.Fatalf("the SSE client of orders got %+v, want the next message on the same connection", ev)
	}
}
