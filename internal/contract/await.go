package contract

// Event-driven completion. A target sends its commands, registers its task
// token with AwaitSsmCommand and waits: no Wait/Poll loop, so its history
// does not grow with the patch's duration. The spokes forward SSM's command
// status-change events to the hub's event bus, where CommandStatusEvents
// resumes the target once every command has ended. Because event delivery
// is best effort, the scheduled PollSsmCommand reconciles every waiting
// target (default every 5 minutes) and resumes it too; whichever comes first
// wins a conditional delete of the waiting record, so a target resumes once.

// AwaitRequest is AwaitSsmCommand's payload (a waitForTaskToken task).
type AwaitRequest struct {
	TaskToken   string   `json:"taskToken"`
	RunID       string   `json:"runId"`
	WaveID      string   `json:"waveId"`
	Account     string   `json:"account"`
	Region      string   `json:"region"`
	ExecutionID string   `json:"executionId"`
	CommandIDs  []string `json:"commandIds"`
	// DeadlineSeconds is how long the commands may run; after it the
	// reconciler resumes the target with PhaseTimedOut.
	DeadlineSeconds int `json:"deadlineSeconds"`
}

// The resumed task's output is a PollResult at PathPoll: PhaseComplete when
// every command ended, PhaseTimedOut when the deadline passed first.

// PathAwaitError is where the await task's Catch puts a timeout of the task
// itself (the last safety net when neither event nor reconciler came).
const PathAwaitError = "$.awaitError"

// SSM's command status-change event, as EventBridge delivers it.
const (
	EventSourceSSM         = "aws.ssm"
	DetailTypeCommandState = "EC2 Command Status-change Notification"
)

// CommandStatusDetail is the detail of a command status-change event.
type CommandStatusDetail struct {
	CommandID    string `json:"command-id"`
	DocumentName string `json:"document-name"`
	Status       string `json:"status"`
	RequestedAt  string `json:"requested-date-time,omitempty"`
}

// TerminalCommandStatuses are the command statuses after which nothing
// more happens to a command.
func TerminalCommandStatuses() []string {
	return []string{"Success", "Failed", "TimedOut", "Cancelled"}
}

// HubEventBusName is the physical name of the hub's command event bus. It
// is named because every spoke's forwarding rule must build its ARN.
func HubEventBusName(namePrefix string) string { return namePrefix + "-command-events" }

// HubEventBusARN is the ARN a spoke forwards command events to.
func HubEventBusARN(partition, region, hubAccount, namePrefix string) string {
	return "arn:" + partition + ":events:" + region + ":" + hubAccount + ":event-bus/" + HubEventBusName(namePrefix)
}

// SpokeEventsStackName is the per-region spoke stack that forwards the
// events (the role stack is deployed once per account, the events stack in
// every region that is patched).
func SpokeEventsStackName(namePrefix string) string { return namePrefix + "-spoke-events" }
