package devbrokers

import (
	"bytes"
	"context"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// startMQTT starts a mochi MQTT 5 broker that admits every client, with one
// TCP listener on a free loopback port. AddListener binds the socket, so the
// kernel-chosen port is known before the broker serves.
// The listener is ours rather than mochi's listeners.TCP: see tcpListener.
func (b *Brokers) startMQTT(_ context.Context, _ Options) error {
	srv := mqtt.New(&mqtt.Options{
		Logger: demoted(b.log.With("broker", "mqtt")),
	})
	b.mqtt = srv
	if err := srv.AddHook(new(allowAll), nil); err != nil {
		return err
	}
	tcp := newTCPListener("sluice-dev", "127.0.0.1:0")
	if err := srv.AddListener(tcp); err != nil {
		return err
	}
	b.mqttAddr = tcp.Address()
	return srv.Serve()
}

// allowAll admits every client and lets it publish and subscribe anywhere.
// It stands in for mochi's hooks/auth.AllowHook, whose package pulls in the
// archived gopkg.in/yaml.v3 for its ledger.
type allowAll struct{ mqtt.HookBase }

func (*allowAll) ID() string { return "sluice-dev-allow-all" }

func (*allowAll) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

func (*allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (*allowAll) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

// Interface guard.
var _ mqtt.Hook = (*allowAll)(nil)
