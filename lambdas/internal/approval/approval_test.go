package approval

import (
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ec2patch/ec2patch/internal/contract"
)

var key = []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")

func TestSignIsHMACOfTheThreeFields(t *testing.T) {
	// Computed independently (openssl dgst -sha256 -hmac) for
	// "abc\napprove\n1796126400" with the key above.
	const want = "73b101ab63a4fdd6b703a977fc52d80190f7da531a903c0f663de0a60ae46ff4"
	if got := Sign(key, "abc", contract.DecisionApprove, 1796126400); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestLinkVerifies(t *testing.T) {
	now := time.Unix(1796120000, 0)
	link := Link("https://api.example.test/prod/approvals/", key, "id_-1", contract.DecisionReject, 1796126400)
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	if u.Path != "/prod/approvals/id_-1" {
		t.Errorf("path %q", u.Path)
	}
	q := u.Query()
	exp, err := Verify(key, "id_-1", q.Get(ParamDecision), q.Get(ParamExpires), q.Get(ParamSignature), now)
	if err != nil || exp != 1796126400 {
		t.Errorf("Verify = %d, %v", exp, err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	now := time.Unix(1796120000, 0)
	sig := Sign(key, "id1", contract.DecisionApprove, 1796126400)
	cases := []struct {
		name                       string
		id, decision, expires, sig string
		at                         time.Time
		want                       error
	}{
		{"tampered id", "id2", "approve", "1796126400", sig, now, ErrBadLink},
		{"tampered decision", "id1", "reject", "1796126400", sig, now, ErrBadLink},
		{"tampered expiry", "id1", "approve", "1796126401", sig, now, ErrBadLink},
		{"tampered signature", "id1", "approve", "1796126400", strings.Repeat("0", 64), now, ErrBadLink},
		{"signature not hex", "id1", "approve", "1796126400", "zz", now, ErrBadLink},
		{"unknown decision", "id1", "maybe", "1796126400", Sign(key, "id1", "maybe", 1796126400), now, ErrBadLink},
		{"expiry not a number", "id1", "approve", "soon", sig, now, ErrBadLink},
		{"missing fields", "id1", "", "", "", now, ErrBadLink},
		{"other key", "id1", "approve", "1796126400", Sign([]byte("another key"), "id1", "approve", 1796126400), now, ErrBadLink},
		{"expired", "id1", "approve", "1796126400", sig, time.Unix(1796126400, 0), ErrExpired},
	}
	for _, c := range cases {
		if _, err := Verify(key, c.id, c.decision, c.expires, c.sig, c.at); !errors.Is(err, c.want) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestNewIDIs128RandomBits(t *testing.T) {
	a, err := NewID()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewID()
	raw, err := base64.RawURLEncoding.DecodeString(a)
	if err != nil || len(raw) != 16 || a == b {
		t.Errorf("IDs %q, %q: want two different base64url encodings of 16 bytes", a, b)
	}
}

type secrets struct {
	calls int
	value string
	err   error
}

func (s *secrets) GetSecretValue(_ context.Context, _ *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	s.calls++
	if s.err != nil {
		return nil, s.err
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(s.value)}, nil
}

func TestKeysReadsTheSecretOnce(t *testing.T) {
	s := &secrets{err: errors.New("throttled")}
	k := &Keys{Secrets: s, SecretID: "arn:aws:secretsmanager:us-east-1:123456789012:secret:signing"}
	if _, err := k.Key(context.Background()); err == nil {
		t.Fatal("no error from a failed read")
	}
	s.err, s.value = nil, string(key)
	for range 3 {
		got, err := k.Key(context.Background())
		if err != nil || string(got) != string(key) {
			t.Fatalf("Key = %q, %v", got, err)
		}
	}
	if s.calls != 2 {
		t.Errorf("%d reads of the secret, want 2 (one failed, then one cached)", s.calls)
	}
	short := &Keys{Secrets: &secrets{value: "short"}}
	if _, err := short.Key(context.Background()); err == nil {
		t.Error("a short key was accepted")
	}
}
