// Package delivery holds the building blocks of webhook delivery: Standard
// Webhooks signatures, the SSRF guard for callback URLs, retry back-off and
// the HTTP client that performs one delivery attempt and classifies its
// outcome. It knows nothing of subscriptions, stores or brokers: the webhook
// entrypoint composes these pieces.
package delivery

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks header names (https://www.standardwebhooks.com).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix marks a Standard Webhooks secret: the rest is the base64 key.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a webhook-timestamp may be from the
// verifier's clock, the value the reference libraries use.
const DefaultTolerance = 5 * time.Minute

// secretBytes is the key length NewSecret generates (the spec asks for
// 24 to 64 bytes).
const secretBytes = 24

// maxSignatureHeader bounds the work Verify does on a hostile header.
const maxSignatureHeader = 8 << 10

// Errors returned by Verify; test with errors.Is.
var (
	// ErrMissingHeader: webhook-id, webhook-timestamp or webhook-signature is absent.
	ErrMissingHeader = errors.New("missing webhook header")
	// ErrBadTimestamp: webhook-timestamp is not an integer or is outside the tolerance.
	ErrBadTimestamp = errors.New("invalid webhook-timestamp")
	// ErrNoMatchingSignature: no v1 signature in webhook-signature matches the payload.
	ErrNoMatchingSignature = errors.New("no matching webhook signature")
	// ErrBadSecret: the secret is empty or its key is not valid base64.
	ErrBadSecret = errors.New("invalid webhook secret")
)

// NewSecret returns a fresh random secret in the Standard Webhooks form
// "whsec_<base64 of 24 random bytes>".
func NewSecret() string {
	key := make([]byte, secretBytes)
	// crypto/rand.Read never returns an error on supported platforms (it
	// crashes the program instead), so there is nothing to handle here.
	_, _ = rand.Read(key)
	return SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// decodeSecret returns the HMAC key of a secret. The whsec_ prefix is
// optional, as in the reference libraries.
func decodeSecret(secret string) ([]byte, error) {
	enc := strings.TrimPrefix(secret, SecretPrefix)
	if enc == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadSecret)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: the part after %q must be standard base64: %v", ErrBadSecret, SecretPrefix, err)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: empty key", ErrBadSecret)
	}
	return key, nil
}

// ValidateSecret reports whether secret can sign: "whsec_" followed by a
// non-empty standard base64 key (the prefix may be omitted).
func ValidateSecret(secret string) error {
	_, err := decodeSecret(secret)
	return err
}

// Sign returns the webhook-signature value for one delivery attempt:
// "v1," followed by the base64 HMAC-SHA256, keyed by the secret's key, of
// "msgID.unixSeconds.body".
func Sign(secret, msgID string, ts time.Time, body []byte) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	if msgID == "" {
		return "", errors.New("webhook signature: empty message id")
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, msgID, ts.Unix(), body)), nil
}

func mac(key []byte, msgID string, ts int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	// hash.Hash.Write never returns an error.
	_, _ = h.Write([]byte(msgID))
	_, _ = h.Write([]byte{'.'})
	_, _ = h.Write(strconv.AppendInt(nil, ts, 10))
	_, _ = h.Write([]byte{'.'})
	_, _ = h.Write(body)
	return h.Sum(nil)
}

// Verify checks a received webhook the way a Standard Webhooks consumer
// does: the three headers are present, the timestamp is within tolerance
// of now (DefaultTolerance when tolerance <= 0), and one of the
// space-separated "v1,<base64>" signatures matches (compared in constant
// time). Signatures of other versions are ignored.
func Verify(secret string, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := decodeSecret(secret)
	if err != nil {
		return err
	}
	id, tsText, sigs := header.Get(HeaderID), header.Get(HeaderTimestamp), header.Get(HeaderSignature)
	switch {
	case id == "":
		return fmt.Errorf("%w: %s", ErrMissingHeader, HeaderID)
	case tsText == "":
		return fmt.Errorf("%w: %s", ErrMissingHeader, HeaderTimestamp)
	case sigs == "":
		return fmt.Errorf("%w: %s", ErrMissingHeader, HeaderSignature)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not whole seconds since the epoch", ErrBadTimestamp, tsText)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	// Compare in seconds so that huge timestamps cannot overflow a Duration.
	tol := int64(tolerance / time.Second)
	if d := now.Unix() - ts; d > tol || d < -tol {
		return fmt.Errorf("%w: %d is more than %s away from now (%d)", ErrBadTimestamp, ts, tolerance, now.Unix())
	}
	if len(sigs) > maxSignatureHeader {
		return fmt.Errorf("%w: %s header longer than %d bytes", ErrNoMatchingSignature, HeaderSignature, maxSignatureHeader)
	}
	want := mac(key, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		version, enc, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoMatchingSignature
}
