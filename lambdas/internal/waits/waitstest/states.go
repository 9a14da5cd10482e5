package waitstest

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
)

// Success is one SendTaskSuccess call.
type Success struct {
	Token  string
	Output string
}

// States records SendTaskSuccess calls. Err, when set, is what every call
// answers (after being recorded).
type States struct {
	mu    sync.Mutex
	Calls []Success
	Err   error
}

// SendTaskSuccess records the call.
func (s *States) SendTaskSuccess(_ context.Context, in *sfn.SendTaskSuccessInput, _ ...func(*sfn.Options)) (*sfn.SendTaskSuccessOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Calls = append(s.Calls, Success{Token: aws.ToString(in.TaskToken), Output: aws.ToString(in.Output)})
	if s.Err != nil {
		return nil, s.Err
	}
	return &sfn.SendTaskSuccessOutput{}, nil
}

// Sent returns a copy of the calls so far.
func (s *States) Sent() []Success {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Success(nil), s.Calls...)
}
