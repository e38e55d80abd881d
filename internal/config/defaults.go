package config

import (
	"time"

	"github.com/sluicegw/sluice/mediation"
)

// Defaults applied by Load to whatever the file leaves out.
const (
	DefaultListen            = ":8080"
	DefaultAdminListen       = "127.0.0.1:8081"
	DefaultDataDir           = "./data"
	DefaultShutdownTimeout   = 15 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 1 << 20
	DefaultCORSMaxAge        = 10 * time.Minute
	DefaultWindow            = mediation.DefaultWindow
	// MaxWindow bounds an entrypoint's window: each unacknowledged message
	// is held in memory per client.
	MaxWindow = 65536
)

func setConfigDefaults(c *Config) {
	s := &c.Server
	setString(&s.HTTP.Listen, DefaultListen)
	setString(&s.Admin.Listen, DefaultAdminListen)
	setString(&s.DataDir, DefaultDataDir)
	setDuration(&s.ShutdownTimeout, DefaultShutdownTimeout)
	setDuration(&s.HTTP.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDuration(&s.HTTP.IdleTimeout, DefaultIdleTimeout)
	if s.HTTP.MaxHeaderBytes == 0 {
		s.HTTP.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	setString(&s.Log.Level, "info")
	setString(&s.Log.Format, "json")
	for i := range c.APIs {
		setAPIDefaults(&c.APIs[i])
	}
}

func setAPIDefaults(a *API) {
	setString(&a.Type, "message")
	setString(&a.Name, a.ID)
	for i := range a.Listeners {
		l := &a.Listeners[i]
		if l.CORS != nil {
			setDuration(&l.CORS.MaxAge, DefaultCORSMaxAge)
		}
		for j := range l.Entrypoints {
			e := &l.Entrypoints[j]
			setString(&e.QoS, "auto")
			if e.Window == 0 {
				e.Window = DefaultWindow
			}
			setString(&e.SlowConsumer, "disconnect")
		}
	}
	for i := range a.EndpointGroups {
		g := &a.EndpointGroups[i]
		if g.LoadBalancer == nil {
			g.LoadBalancer = &LoadBalancer{}
		}
		setString(&g.LoadBalancer.Type, "round-robin")
		for j := range g.Endpoints {
			if g.Endpoints[j].Weight == 0 {
				g.Endpoints[j].Weight = 1
			}
		}
	}
	for i := range a.Flows {
		f := &a.Flows[i]
		setTrue(&f.Enabled)
		for _, steps := range [][]Step{f.Request, f.Response, f.Publish, f.Subscribe} {
			for j := range steps {
				setTrue(&steps[j].Enabled)
			}
		}
	}
	for i := range a.Plans {
		setString(&a.Plans[i].Mode, "standard")
	}
}

func setString(p *string, def string) {
	if *p == "" {
		*p = def
	}
}

func setDuration(p *Duration, def time.Duration) {
	if *p == 0 {
		*p = Duration(def)
	}
}

func setTrue(p **bool) {
	if *p == nil {
		t := true
		*p = &t
	}
}
