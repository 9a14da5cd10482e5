package iamcheck

import (
	"sort"
	"strings"

	"github.com/ec2patch/ec2patch/test/proxy"
)

// Request is one permission a call needs: an IAM action and, when the
// checker can derive it from the call, the resource ARN ("" otherwise).
type Request struct {
	Action   string
	Resource string
}

// iamPrefix maps a SigV4 service name to the IAM action prefix where the two
// differ.
var iamPrefix = map[string]string{"monitoring": "cloudwatch"}

// s3Actions maps the proxy's S3 operation names to the IAM actions they
// need.
var s3Actions = map[string]string{
	"ListObjectsV2": "ListBucket", "ListObjects": "ListBucket", "HeadBucket": "ListBucket",
	"HeadObject": "GetObject", "CopyObject": "PutObject", "DeleteObjects": "DeleteObject",
}

// bucketLevel are the S3 actions whose resource is the bucket.
var bucketLevel = map[string]bool{"ListBucket": true, "CreateBucket": true}

// Requests derives the permissions call needs. derived is false when the
// call names a resource the checker could not derive, so only its action
// was checked.
func Requests(c proxy.Call) (reqs []Request, derived bool) {
	prefix := c.Service
	if p, ok := iamPrefix[prefix]; ok {
		prefix = p
	}
	region, account := c.Region, c.Account
	arn := func(service, rest string) string {
		return "arn:aws:" + service + ":" + region + ":" + account + ":" + rest
	}
	one := func(action, resource string) ([]Request, bool) {
		return []Request{{Action: prefix + ":" + action, Resource: resource}}, resource != ""
	}
	switch c.Service {
	case "dynamodb":
		return dynamoRequests(c, arn)
	case "s3":
		action := c.Action
		if a, ok := s3Actions[action]; ok {
			action = a
		}
		bucket, key, _ := strings.Cut(strings.TrimPrefix(c.Path, "/"), "/")
		switch {
		case bucket == "":
			return one(action, "")
		case bucketLevel[action] || key == "":
			return one(action, "arn:aws:s3:::"+bucket)
		}
		return one(action, "arn:aws:s3:::"+bucket+"/"+key)
	case "sns":
		return one(c.Action, first(c.Form.Get("TopicArn"), str(c.Params, "TopicArn")))
	case "lambda":
		action := c.Action
		if action == "Invoke" {
			action = "InvokeFunction"
		}
		fn := c.Function
		if fn != "" && !strings.HasPrefix(fn, "arn:") {
			fn = arn("lambda", "function:"+fn)
		}
		return one(action, fn)
	case "states":
		switch c.Action {
		case "StartExecution", "StartSyncExecution", "DescribeStateMachine":
			return one(c.Action, str(c.Params, "stateMachineArn"))
		case "DescribeExecution", "StopExecution", "GetExecutionHistory", "RedriveExecution":
			return one(c.Action, str(c.Params, "executionArn"))
		}
		// SendTaskSuccess and the like name a task token, not a resource.
		return one(c.Action, "")
	case "sts":
		return one(c.Action, c.RoleARN)
	case "ssm":
		if c.Action != "SendCommand" {
			return one(c.Action, "") // read APIs take no resource
		}
		return sendCommandRequests(c, prefix)
	case "secretsmanager":
		if id := str(c.Params, "SecretId"); strings.HasPrefix(id, "arn:") {
			return one(c.Action, id)
		}
		return one(c.Action, "")
	case "monitoring":
		names := c.Param("AlarmNames")
		if len(names) == 0 {
			for k, v := range c.Form {
				if strings.HasPrefix(k, "AlarmNames.member.") {
					names = append(names, v...)
				}
			}
		}
		if len(names) == 0 {
			return one(c.Action, "")
		}
		sort.Strings(names)
		for _, n := range names {
			reqs = append(reqs, Request{Action: prefix + ":" + c.Action, Resource: arn("cloudwatch", "alarm:"+n)})
		}
		return reqs, true
	case "events":
		if bus := str(c.Params, "EventBusName"); bus != "" {
			if !strings.HasPrefix(bus, "arn:") {
				bus = arn("events", "event-bus/"+bus)
			}
			return one(c.Action, bus)
		}
		return one(c.Action, "")
	}
	return one(c.Action, "")
}

func dynamoRequests(c proxy.Call, arn func(string, string) string) ([]Request, bool) {
	table := func(m map[string]any) string {
		name := str(m, "TableName")
		if name == "" {
			return ""
		}
		if idx := str(m, "IndexName"); idx != "" {
			return arn("dynamodb", "table/"+name+"/index/"+idx)
		}
		return arn("dynamodb", "table/"+name)
	}
	var reqs []Request
	add := func(action, resource string) {
		reqs = append(reqs, Request{Action: "dynamodb:" + action, Resource: resource})
	}
	switch c.Action {
	case "BatchWriteItem", "BatchGetItem":
		items, _ := c.Params["RequestItems"].(map[string]any)
		names := make([]string, 0, len(items))
		for name := range items {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			add(c.Action, arn("dynamodb", "table/"+name))
		}
	case "TransactWriteItems", "TransactGetItems":
		// IAM has no Transact* actions: each item needs its own.
		kinds := map[string]string{"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
			"ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
		items, _ := c.Params["TransactItems"].([]any)
		for _, it := range items {
			m, _ := it.(map[string]any)
			for kind, action := range kinds {
				if sub, ok := m[kind].(map[string]any); ok {
					add(action, table(sub))
				}
			}
		}
	default:
		add(c.Action, table(c.Params))
	}
	if len(reqs) == 0 {
		return []Request{{Action: "dynamodb:" + c.Action}}, false
	}
	for _, r := range reqs {
		if r.Resource == "" {
			return reqs, false
		}
	}
	return reqs, true
}

// sendCommandRequests needs ssm:SendCommand on the document and on every
// instance named; a command sent to tag targets names no instance.
func sendCommandRequests(c proxy.Call, prefix string) ([]Request, bool) {
	action := prefix + ":SendCommand"
	doc := str(c.Params, "DocumentName")
	derived := doc != "" && len(c.InstanceIDs) > 0
	var reqs []Request
	if doc != "" {
		if !strings.HasPrefix(doc, "arn:") {
			owner := c.Account
			if strings.HasPrefix(doc, "AWS-") {
				owner = "" // AWS-owned documents have no account
			}
			doc = "arn:aws:ssm:" + c.Region + ":" + owner + ":document/" + doc
		}
		reqs = append(reqs, Request{Action: action, Resource: doc})
	}
	for _, id := range c.InstanceIDs {
		reqs = append(reqs, Request{Action: action, Resource: "arn:aws:ec2:" + c.Region + ":" + c.Account + ":instance/" + id})
	}
	if len(reqs) == 0 {
		reqs = []Request{{Action: action}}
	}
	return reqs, derived
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
