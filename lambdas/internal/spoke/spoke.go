// Package spoke gives handlers EC2 and SSM clients that act in a spoke
// account: it assumes the spoke role with the configured ExternalId, caches
// the credentials per account for the life of a warm handler, and builds one
// client per account-region from them.
package spoke

import (
	"context"
	"regexp"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/fault"
)

// Target is one account-region of one run.
type Target struct {
	RunID   string
	Account string
	Region  string
}

// Factory returns a client of type T for a target. Handlers hold a Factory
// of the one-method interface they call, so tests hand them a fake.
type Factory[T any] interface {
	Client(t Target) T
}

// FactoryFunc adapts a function to Factory.
type FactoryFunc[T any] func(t Target) T

// Client calls f.
func (f FactoryFunc[T]) Client(t Target) T { return f(t) }

// Session builds spoke clients from the hub function's own configuration.
type Session struct {
	base       aws.Config
	sts        stscreds.AssumeRoleAPIClient
	roleName   string
	externalID string

	mu    sync.Mutex
	creds map[credKey]*aws.CredentialsCache
	ec2   map[Target]*ec2.Client
	ssm   map[Target]*ssm.Client
}

// credKey scopes cached credentials: one account, one run (the run is in
// the session name, which CloudTrail shows in the spoke).
type credKey struct{ runID, account string }

// NewSession returns a Session that assumes roleName in each spoke with
// externalID, calling STS through stsClient (built from base).
func NewSession(base aws.Config, stsClient stscreds.AssumeRoleAPIClient, roleName, externalID string) *Session {
	return &Session{
		base: base, sts: stsClient, roleName: roleName, externalID: externalID,
		creds: map[credKey]*aws.CredentialsCache{},
		ec2:   map[Target]*ec2.Client{}, ssm: map[Target]*ssm.Client{},
	}
}

// RoleARN is the spoke role of an account in the partition of region.
func (s *Session) RoleARN(account, region string) string {
	return contract.SpokeRoleARN(contract.Partition(region), account, s.roleName)
}

// Config returns the SDK configuration acting in the target's account and
// region. Assume-role is lazy: the first call made with it assumes the role,
// and a failure surfaces from that call as a fault.AssumeRoleError.
func (s *Session) Config(t Target) aws.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := credKey{t.RunID, t.Account}
	cache, ok := s.creds[key]
	if !ok {
		arn := s.RoleARN(t.Account, t.Region)
		inner := stscreds.NewAssumeRoleProvider(s.sts, arn, func(o *stscreds.AssumeRoleOptions) {
			o.ExternalID = aws.String(s.externalID)
			o.RoleSessionName = SessionName(t.RunID)
		})
		cache = aws.NewCredentialsCache(assumeProvider{inner: inner, roleARN: arn, account: t.Account})
		s.creds[key] = cache
	}
	cfg := s.base.Copy()
	cfg.Region = t.Region
	cfg.Credentials = cache
	return cfg
}

// EC2 returns the EC2 client of a target.
func (s *Session) EC2(t Target) *ec2.Client {
	cfg := s.Config(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.ec2[t]; ok {
		return c
	}
	c := ec2.NewFromConfig(cfg)
	s.ec2[t] = c
	return c
}

// SSM returns the SSM client of a target.
func (s *Session) SSM(t Target) *ssm.Client {
	cfg := s.Config(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.ssm[t]; ok {
		return c
	}
	c := ssm.NewFromConfig(cfg)
	s.ssm[t] = c
	return c
}

// assumeProvider marks assume-role failures so the handler's boundary can
// name the role that could not be assumed.
type assumeProvider struct {
	inner   aws.CredentialsProvider
	roleARN string
	account string
}

func (p assumeProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := p.inner.Retrieve(ctx)
	if err != nil {
		return c, &fault.AssumeRoleError{RoleARN: p.roleARN, Account: p.account, Err: err}
	}
	return c, nil
}

var illegalSessionChars = regexp.MustCompile(`[^\w+=,.@-]`)

// SessionName is the role session name of a run: "ec2patch-<runId>", with
// characters STS rejects replaced and cut to STS's 64-character limit.
func SessionName(runID string) string {
	n := illegalSessionChars.ReplaceAllString("ec2patch-"+runID, "-")
	if len(n) > 64 {
		n = n[:64]
	}
	return n
}
