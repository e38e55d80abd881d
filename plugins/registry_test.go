package plugins_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/mediation"
	"github.com/sluicegw/sluice/plugins"
)

type fakeConfig struct{ Publish bool }

func (c *fakeConfig) Capabilities() mediation.Capabilities {
	return mediation.Capabilities{Publish: c.Publish}
}

type fakeEndpoint struct{ mediation.Endpoint }

func TestTypedEndpoint(t *testing.T) {
	var got *fakeConfig
	p := plugins.TypedEndpoint("fake", func() *fakeConfig { return &fakeConfig{Publish: true} },
		func(ctx plugins.Context, c *fakeConfig) (mediation.Endpoint, error) {
			if ctx.Logger == nil {
				t.Error("no logger")
			}
			got = c
			return fakeEndpoint{}, nil
		})
	cfg := p.Config()
	if caps := p.Capabilities(cfg); !caps.Publish {
		t.Fatalf("capabilities of the defaults: %+v", caps)
	}
	if caps := p.Capabilities("foreign"); caps.Publish {
		t.Fatalf("capabilities of a foreign value: %+v", caps)
	}
	if _, err := p.New(plugins.Context{Context: context.Background()}, cfg); err != nil || got != cfg {
		t.Fatalf("New: %v, config %p want %p", err, got, cfg)
	}
	if _, err := p.New(plugins.Context{}, "foreign"); err == nil || !strings.Contains(err.Error(), "fake: configuration is string") {
		t.Fatalf("New with a foreign config: %v", err)
	}
}

func TestRegistryIsAValue(t *testing.T) {
	r := plugins.New()
	p := plugins.TypedEndpoint("fake", func() *fakeConfig { return &fakeConfig{} },
		func(plugins.Context, *fakeConfig) (mediation.Endpoint, error) { return fakeEndpoint{}, nil })
	r.RegisterEndpoint(p)
	c := r.Clone()
	c.RegisterPolicy(plugins.PolicyPlugin{Name: "only-in-clone", New: func(plugins.Context, any) (mediation.Policy, error) { return nil, nil }})
	if _, ok := r.Policy("only-in-clone"); ok {
		t.Fatal("a clone's registration leaked into the original")
	}
	if _, ok := c.Endpoint("fake"); !ok {
		t.Fatal("the clone lost the original's endpoint")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("registering a type twice did not panic")
		}
	}()
	r.RegisterEndpoint(p)
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "250ms", want: "250ms"},
		{in: "1m30s", want: "1m30s"},
		{in: "0", want: "0s"},
		{in: "300", err: `add a unit, such as "300s"`},
		{in: "soon", err: "want a Go duration"},
	} {
		var d plugins.Duration
		err := d.UnmarshalText([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || d.String() != tc.want {
			t.Errorf("%q: %v, %v; want %s", tc.in, d, err, tc.want)
		}
	}
	if plugins.ConfigOr[time.Duration](nil, func() time.Duration { return time.Second }) != time.Second {
		t.Error("ConfigOr without a configuration did not return the defaults")
	}
}
