// Package approval signs and verifies the links of an approval gate, and
// holds the signing key. SendApprovalRequest signs; ApprovalCallback
// verifies. A link names the approval by an opaque ID, the decision and when
// it expires, and carries
//
//	signature = hex(HMAC-SHA256(key, id + "\n" + decision + "\n" + expires))
//
// so none of the three can be changed without the key, which never leaves
// the hub's Secrets Manager secret.
package approval

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ec2patch/ec2patch/internal/contract"
)

// Query parameters (and form fields) of a link.
const (
	ParamDecision  = "decision"
	ParamExpires   = "expires"
	ParamSignature = "signature"
)

// NewID returns an approval ID: 128 random bits, base64url without padding.
func NewID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make approval ID: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Sign returns the signature of a link.
func Sign(key []byte, id, decision string, expires int64) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "\n" + decision + "\n" + strconv.FormatInt(expires, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// Link is the URL an approver follows: <baseURL>/<id>?decision=...&expires=...&signature=...
func Link(baseURL string, key []byte, id, decision string, expires int64) string {
	q := url.Values{}
	q.Set(ParamDecision, decision)
	q.Set(ParamExpires, strconv.FormatInt(expires, 10))
	q.Set(ParamSignature, Sign(key, id, decision, expires))
	// Encode sorts by key: decision, expires, signature.
	return strings.TrimRight(baseURL, "/") + "/" + url.PathEscape(id) + "?" + q.Encode()
}

// Refusals of Verify. The callback shows them to the approver.
var (
	ErrBadLink = errors.New("this approval link is not valid: it was changed or is incomplete")
	ErrExpired = errors.New("this approval link has expired")
)

// Verify checks a link's fields and returns its decision and expiry. The
// signature is compared in constant time, and before the expiry is looked
// at, so a forged link learns nothing.
func Verify(key []byte, id, decision, expires, signature string, now time.Time) (int64, error) {
	exp, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || id == "" || (decision != contract.DecisionApprove && decision != contract.DecisionReject) {
		return 0, ErrBadLink
	}
	got, err := hex.DecodeString(signature)
	if err != nil {
		return 0, ErrBadLink
	}
	want, _ := hex.DecodeString(Sign(key, id, decision, exp))
	if !hmac.Equal(got, want) {
		return 0, ErrBadLink
	}
	if !now.Before(time.Unix(exp, 0)) {
		return 0, ErrExpired
	}
	return exp, nil
}

// SecretGetter is Secrets Manager's GetSecretValue.
type SecretGetter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

var _ SecretGetter = (*secretsmanager.Client)(nil)

// Keys reads the signing key from the secret once per cold start (a failed
// read is tried again on the next call, so a throttled cold start heals).
type Keys struct {
	Secrets  SecretGetter
	SecretID string // the secret's ARN

	mu  sync.Mutex
	key []byte
}

// Key returns the signing key: the secret's SecretString.
func (k *Keys) Key(ctx context.Context) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key != nil {
		return k.key, nil
	}
	out, err := k.Secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(k.SecretID)})
	if err != nil {
		return nil, fmt.Errorf("read the signing key: %w", err)
	}
	s := aws.ToString(out.SecretString)
	if len(s) < 32 {
		return nil, fmt.Errorf("read the signing key: the secret's SecretString has %d characters, want at least 32", len(s))
	}
	k.key = []byte(s)
	return k.key, nil
}
