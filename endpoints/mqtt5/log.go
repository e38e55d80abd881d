package mqtt5

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/log"
)

// pahoLogger forwards paho's loggers to slog at one level. paho formats
// eagerly, so the debug loggers are installed only when debug is enabled.
type pahoLogger struct {
	l     *slog.Logger
	level slog.Level
}

func (p pahoLogger) Println(v ...any) {
	p.l.Log(context.Background(), p.level, "mqtt5: paho: "+strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

func (p pahoLogger) Printf(format string, v ...any) {
	p.l.Log(context.Background(), p.level, "mqtt5: paho: "+strings.TrimSuffix(fmt.Sprintf(format, v...), "\n"))
}

// pahoLoggers returns the debug and error loggers for a connection.
func pahoLoggers(l *slog.Logger) (debug, errs log.Logger) {
	debug = log.NOOPLogger{}
	if l.Enabled(context.Background(), slog.LevelDebug) {
		debug = pahoLogger{l, slog.LevelDebug}
	}
	return debug, pahoLogger{l, slog.LevelWarn}
}

// link follows the health of one connection for logs and errors: the first
// failed attempt of an outage is a warning, the retries are debug lines, and
// the recovery is logged once.
type link struct {
	log     *slog.Logger
	down    atomic.Bool
	lastErr atomic.Pointer[error] // the last failed attempt; nil once connected
}

func (l *link) connectFailed(err error) {
	l.lastErr.Store(&err)
	if l.down.CompareAndSwap(false, true) {
		l.log.Warn("mqtt5: cannot connect to the broker; retrying", "err", err)
		return
	}
	l.log.Debug("mqtt5: connection attempt failed", "err", err)
}

func (l *link) connected() {
	l.lastErr.Store(nil)
	if l.down.Swap(false) {
		l.log.Info("mqtt5: connected to the broker again")
	}
}

func (l *link) lost() {
	if l.down.CompareAndSwap(false, true) {
		l.log.Warn("mqtt5: connection to the broker lost; reconnecting")
	}
}

// serverDisconnect explains a DISCONNECT sent by the broker. A session
// taken over means another client uses the same id, and the two would take
// turns kicking each other out for as long as both run.
func (l *link) serverDisconnect(clientID string, d *paho.Disconnect) {
	reason := ""
	if d.Properties != nil {
		reason = d.Properties.ReasonString
	}
	if d.ReasonCode == 0x8E {
		l.log.Error("mqtt5: another client connected with the same client id and took the session over; "+
			"give every gateway instance and every endpoint of a group its own clientId (such as ${HOSTNAME})",
			"clientId", clientID, "reason", reason)
		return
	}
	l.log.Warn("mqtt5: the broker closed the connection", "code", fmt.Sprintf("0x%02x", d.ReasonCode), "reason", reason)
}

// err is the last connection failure, or nil.
func (l *link) err() error {
	if p := l.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// refusal returns the last failure when the broker refused the connection
// for a reason retrying does not cure (bad credentials, not authorized, a
// client id it rejects), else nil.
func (l *link) refusal() error {
	var ce *autopaho.ConnackError
	if err := l.err(); err != nil && errors.As(err, &ce) && permanentConnack(ce.ReasonCode) {
		return err
	}
	return nil
}

// permanentConnack reports CONNACK reason codes that retrying cannot cure.
func permanentConnack(code byte) bool {
	switch code {
	case 0x84, // unsupported protocol version
		0x85, // client identifier not valid
		0x86, // bad user name or password
		0x87, // not authorized
		0x8C: // bad authentication method
		return true
	}
	return false
}
