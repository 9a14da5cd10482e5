package hub

import "github.com/ec2patch/ec2patch/internal/config"

// monitoring creates the dashboard and the alarms. TODO(issue 5): the
// monitoring helper builds it.
func (h *Stack) monitoring(p config.Params) {}
