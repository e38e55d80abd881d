package delivery

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The published Standard Webhooks test vector, reproduced by every
// reference library (libraries/go/webhook_test.go TestWebhookSign in
// github.com/standard-webhooks/standard-webhooks). Matching it is what
// proves a receiver's stock library accepts our signatures.
const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS     = 1614265330
	vectorBody   = `{"test": 2432232314}`
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesPublishedVector(t *testing.T) {
	t.Parallel()
	for _, secret := range []string{vectorSecret, strings.TrimPrefix(vectorSecret, SecretPrefix)} {
		got, err := Sign(secret, vectorID, time.Unix(vectorTS, 0), []byte(vectorBody))
		if err != nil {
			t.Fatalf("Sign(%q): %v", secret, err)
		}
		if got != vectorSig {
			t.Errorf("Sign(%q) = %q, want %q", secret, got, vectorSig)
		}
	}
}

func vectorHeader(sig string) http.Header {
	h := http.Header{}
	h.Set(HeaderID, vectorID)
	h.Set(HeaderTimestamp, strconv.Itoa(vectorTS))
	h.Set(HeaderSignature, sig)
	return h
}

func TestVerify(t *testing.T) {
	t.Parallel()
	at := time.Unix(vectorTS, 0)
	other := "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
	tests := []struct {
		desc    string
		secret  string
		header  func() http.Header
		body    string
		now     time.Time
		wantErr error
	}{
		{desc: "published vector verifies", header: func() http.Header { return vectorHeader(vectorSig) }, now: at},
		{desc: "one of several signatures matches", header: func() http.Header {
			return vectorHeader(other + " v2,abc " + vectorSig + " garbage v1,!!!")
		}, now: at},
		{desc: "within tolerance in the past", header: func() http.Header { return vectorHeader(vectorSig) }, now: at.Add(4 * time.Minute)},
		{desc: "within tolerance in the future", header: func() http.Header { return vectorHeader(vectorSig) }, now: at.Add(-4 * time.Minute)},
		{desc: "too old", header: func() http.Header { return vectorHeader(vectorSig) }, now: at.Add(6 * time.Minute), wantErr: ErrBadTimestamp},
		{desc: "too new", header: func() http.Header { return vectorHeader(vectorSig) }, now: at.Add(-6 * time.Minute), wantErr: ErrBadTimestamp},
		{desc: "tampered body", body: `{"test": 2432232315}`, header: func() http.Header { return vectorHeader(vectorSig) }, now: at, wantErr: ErrNoMatchingSignature},
		{desc: "wrong signature", header: func() http.Header { return vectorHeader(other) }, now: at, wantErr: ErrNoMatchingSignature},
		{desc: "right signature under another version", header: func() http.Header {
			return vectorHeader("v2," + strings.TrimPrefix(vectorSig, "v1,"))
		}, now: at, wantErr: ErrNoMatchingSignature},
		{desc: "wrong secret", secret: NewSecret(), header: func() http.Header { return vectorHeader(vectorSig) }, now: at, wantErr: ErrNoMatchingSignature},
		{desc: "missing id", header: func() http.Header { h := vectorHeader(vectorSig); h.Del(HeaderID); return h }, now: at, wantErr: ErrMissingHeader},
		{desc: "missing timestamp", header: func() http.Header { h := vectorHeader(vectorSig); h.Del(HeaderTimestamp); return h }, now: at, wantErr: ErrMissingHeader},
		{desc: "missing signature", header: func() http.Header { h := vectorHeader(vectorSig); h.Del(HeaderSignature); return h }, now: at, wantErr: ErrMissingHeader},
		{desc: "non-numeric timestamp", header: func() http.Header { h := vectorHeader(vectorSig); h.Set(HeaderTimestamp, "1614265330.5"); return h }, now: at, wantErr: ErrBadTimestamp},
		{desc: "changed timestamp breaks the signature", header: func() http.Header {
			h := vectorHeader(vectorSig)
			h.Set(HeaderTimestamp, strconv.Itoa(vectorTS+1))
			return h
		}, now: at, wantErr: ErrNoMatchingSignature},
		{desc: "bad secret", secret: "whsec_not base64!", header: func() http.Header { return vectorHeader(vectorSig) }, now: at, wantErr: ErrBadSecret},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			secret, body := tt.secret, tt.body
			if secret == "" {
				secret = vectorSecret
			}
			if body == "" {
				body = vectorBody
			}
			err := Verify(secret, tt.header(), []byte(body), tt.now, 0)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestSignVerifyRoundTripWithNewSecret(t *testing.T) {
	t.Parallel()
	s1, s2 := NewSecret(), NewSecret()
	if s1 == s2 {
		t.Fatal("NewSecret returned the same secret twice")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s1, SecretPrefix))
	if !strings.HasPrefix(s1, SecretPrefix) || err != nil || len(key) != 24 {
		t.Fatalf("NewSecret = %q: want whsec_ + base64 of 24 bytes (decode err %v, %d bytes)", s1, err, len(key))
	}
	now := time.Now()
	body := []byte("hello\x00binary\xff")
	sig, err := Sign(s1, "evt-1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(HeaderID, "evt-1")
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderSignature, sig)
	if err := Verify(s1, h, body, now, time.Minute); err != nil {
		t.Fatalf("round trip: %v", err)
	}
	if err := Verify(s2, h, body, now, time.Minute); !errors.Is(err, ErrNoMatchingSignature) {
		t.Fatalf("other secret: got %v, want ErrNoMatchingSignature", err)
	}
}

func TestSignRefusesBadInput(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ desc, secret, id string }{
		{"empty secret", "", "id"},
		{"prefix only", SecretPrefix, "id"},
		{"not base64", "whsec_%%%", "id"},
		{"empty id", vectorSecret, ""},
	} {
		if _, err := Sign(tt.secret, tt.id, time.Unix(0, 0), nil); err == nil {
			t.Errorf("%s: Sign succeeded, want an error", tt.desc)
		}
	}
	if err := ValidateSecret(vectorSecret); err != nil {
		t.Errorf("ValidateSecret(vector) = %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(vectorID, strconv.Itoa(vectorTS), vectorSig, []byte(vectorBody))
	f.Add("id", "-99999999999999999999", "v1,,, v1", []byte{})
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
		err := Verify(vectorSecret, h, body, time.Unix(vectorTS, 0), 0)
		if err != nil {
			return
		}
		// Anything that verifies carries, as a v1 entry, exactly what Sign
		// produces for its id, timestamp and body, and a timestamp in range.
		n, perr := strconv.ParseInt(ts, 10, 64)
		if perr != nil || n < vectorTS-300 || n > vectorTS+300 {
			t.Fatalf("Verify accepted timestamp %q outside the tolerance", ts)
		}
		want, serr := Sign(vectorSecret, id, time.Unix(n, 0), body)
		if serr != nil {
			t.Fatalf("Verify accepted id %q that Sign refuses: %v", id, serr)
		}
		wantMAC, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(want, "v1,"))
		for _, f := range strings.Fields(sig) {
			if enc, ok := strings.CutPrefix(f, "v1,"); ok {
				if got, err := base64.StdEncoding.DecodeString(enc); err == nil && string(got) == string(wantMAC) {
					return
				}
			}
		}
		t.Fatalf("Verify accepted id=%q ts=%q sig=%q that Sign does not produce", id, ts, sig)
	})
}
