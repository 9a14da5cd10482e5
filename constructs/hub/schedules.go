package hub

import "github.com/ec2patch/ec2patch/internal/config"

// schedules creates one EventBridge Scheduler schedule per campaign that has
// one. TODO(issue 5): the schedules helper builds it.
func (h *Stack) schedules(p config.Params) {}
