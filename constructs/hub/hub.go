// Package hub defines HubStack: the state table, the report bucket, the
// notification topic, the KMS key that encrypts them, the Lambda handlers,
// the PatchWaveStateMachine that runs them, the approval API with the
// secret that signs its links, and the command event bus and reconcile
// schedule that resume the targets waiting for their commands.
package hub

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ec2patch/ec2patch/constructs/patchwave"
	"github.com/ec2patch/ec2patch/constructs/spokeevents"
	"github.com/ec2patch/ec2patch/internal/config"
	"github.com/ec2patch/ec2patch/internal/contract"
)

// Logical IDs of the stateful resources, pinned so a refactor of the
// construct tree never replaces the table or the bucket.
const (
	TableLogicalID  = "StateTable"
	BucketLogicalID = "ReportBucket"
)

// ApprovalStage is the approval API's one stage, part of every link.
const ApprovalStage = "prod"

// approvalsPath is the approval API's resource for one approval; links are
// <EnvApprovalURL>/<approvalId>?... under it.
const approvalsPath = "approvals"

// StackProps configure HubStack.
type StackProps struct {
	awscdk.StackProps
	// Params is the validated environment configuration. Required.
	Params config.Params
	// LambdaCodeDir holds one directory per handler (<dir>/bootstrap, built
	// by `make build`). Used when Params.Hub.ArtifactBucket is empty.
	// Default: build/lambdas.
	LambdaCodeDir string
}

// Stack is HubStack.
type Stack struct {
	awscdk.Stack
	Key      awskms.Key
	Table    awsdynamodb.Table
	Bucket   awss3.Bucket
	Topic    awssns.Topic
	TaskRole awsiam.Role
	// SigningSecret holds the HMAC key that signs approval links.
	SigningSecret awssecretsmanager.Secret
	// ApprovalAPI serves the approval links (ApprovalCallback).
	ApprovalAPI awsapigateway.RestApi
	// ApprovalURL is the base URL of approval links (EnvApprovalURL).
	ApprovalURL  *string
	Functions    map[string]awslambda.Function
	StateMachine *patchwave.StateMachine
	// EventBus receives the spokes' command status events.
	EventBus awsevents.EventBus
	// CommandEventsRule sends them to CommandStatusEvents; ReconcileRule
	// runs PollSsmCommand every reconcile_interval_minutes.
	CommandEventsRule, ReconcileRule awsevents.Rule
	// DeadLetterQueue keeps the events neither rule could deliver.
	DeadLetterQueue awssqs.Queue
	// Monitoring is the dashboard and the alarms (monitoring.go).
	Monitoring *Monitoring
}

// NewStack builds HubStack from props.Params.
func NewStack(scope constructs.Construct, id string, props *StackProps) *Stack {
	if props == nil {
		props = &StackProps{}
	}
	sp := props.StackProps
	if sp.Description == nil {
		sp.Description = jsii.String("ec2patch HubStack: orchestrates EC2 patching across spoke accounts")
	}
	codeDir := props.LambdaCodeDir
	if codeDir == "" {
		codeDir = filepath.Join("build", "lambdas")
	}
	p := props.Params
	h := &Stack{Stack: awscdk.NewStack(scope, jsii.String(id), &sp), Functions: map[string]awslambda.Function{}}
	h.storage(p)
	logGroups := h.logGroups(p)
	roles := h.roles(p)
	h.functions(p, codeDir, logGroups, roles)
	h.approvalAPI(logGroups[approvalAccessLogs])

	fns := map[string]awslambda.IFunction{}
	for _, fn := range contract.StateMachineFunctions() {
		fns[fn.Name] = h.Functions[fn.Name]
	}
	h.StateMachine = patchwave.NewStateMachine(h.Stack, "PatchWaveStateMachine", &patchwave.Props{
		Functions: fns,
		Bucket:    h.Bucket,
		LogGroup:  logGroups["StateMachine"],
	})
	// ApprovalCallback answers the orchestrator's task tokens, and no other
	// state machine's.
	roles[contract.ApprovalCallback.Name].AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("AnswerApprovalTasks"),
		Actions:   jsii.Strings("states:SendTaskSuccess", "states:SendTaskFailure"),
		Resources: jsii.Strings(*h.StateMachine.Orchestrator.StateMachineArn()),
	}))
	h.resumeWaits(roles)
	h.events(p)
	h.schedules(p)  // schedules.go: campaigns' EventBridge Scheduler schedules
	h.monitoring(p) // monitoring.go: dashboard and alarms
	h.suppressions()
	h.checkov()        // checkov.go: environment encryption and checkov's skips
	h.pruneDependsOn() // dependson.go: after every grant, so each default policy exists
	h.outputs()
	return h
}

func (h *Stack) storage(p config.Params) {
	h.Key = awskms.NewKey(h.Stack, jsii.String("Key"), &awskms.KeyProps{
		Description:       jsii.String("ec2patch " + p.Hub.NamePrefix + ": state table, report bucket, topic and logs"),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})
	// CloudWatch Logs encrypts this stack's log groups with the key; the
	// service is not an IAM principal of the account, so the key policy must
	// name it, limited to log groups of this account and region.
	logsArn := fmt.Sprintf("arn:%s:logs:%s:%s:log-group:*", *awscdk.Aws_PARTITION(), *h.Region(), *h.Account())
	h.Key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchLogs"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("logs."+*h.Region()+".amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]interface{}{
			"ArnLike": map[string]interface{}{"kms:EncryptionContext:aws:logs:arn": logsArn},
		},
	}), jsii.Bool(false))
	// SNS, S3 and DynamoDB use the key on behalf of this account's
	// principals, which the grants below allow; the key policy lets the
	// account delegate to IAM only through those services.
	h.Key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("ThroughAccountServices"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewAccountRootPrincipal()},
		Actions:    jsii.Strings("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]interface{}{
			"StringEquals": map[string]interface{}{
				"kms:CallerAccount": *h.Account(),
				"kms:ViaService": []string{
					"sns." + *h.Region() + ".amazonaws.com",
					"s3." + *h.Region() + ".amazonaws.com",
					"dynamodb." + *h.Region() + ".amazonaws.com",
					"sqs." + *h.Region() + ".amazonaws.com",
				},
			},
		},
	}), jsii.Bool(false))

	h.Table = awsdynamodb.NewTable(h.Stack, jsii.String("StateTable"), &awsdynamodb.TableProps{
		PartitionKey:                     &awsdynamodb.Attribute{Name: jsii.String(contract.AttrPK), Type: awsdynamodb.AttributeType_STRING},
		SortKey:                          &awsdynamodb.Attribute{Name: jsii.String(contract.AttrSK), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:                      awsdynamodb.BillingMode_PAY_PER_REQUEST,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: jsii.Bool(true)},
		TimeToLiveAttribute:              jsii.String(contract.AttrTTL),
		Encryption:                       awsdynamodb.TableEncryption_CUSTOMER_MANAGED,
		EncryptionKey:                    h.Key,
		RemovalPolicy:                    awscdk.RemovalPolicy_RETAIN,
	})
	h.Table.Node().DefaultChild().(awsdynamodb.CfnTable).OverrideLogicalId(jsii.String(TableLogicalID))

	days := func(n int) awscdk.Duration { return awscdk.Duration_Days(jsii.Number(float64(n))) }
	// Nothing the hub stores is public: every bucket blocks public access
	// and every store denies requests without TLS. The one public endpoint
	// is the approval API (approvalAPI), by design: approvers have no AWS
	// identity, so the signed, expiring, single-use link is the
	// authorization, and the stage is throttled.
	h.Bucket = awss3.NewBucket(h.Stack, jsii.String("ReportBucket"), &awss3.BucketProps{
		Encryption:        awss3.BucketEncryption_KMS,
		EncryptionKey:     h.Key,
		BucketKeyEnabled:  jsii.Bool(true),
		EnforceSSL:        jsii.Bool(true),
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		Versioned:         jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
		LifecycleRules: &[]*awss3.LifecycleRule{
			{Id: jsii.String("RunManifests"), Prefix: jsii.String("runs/"), Expiration: days(90)},
			{Id: jsii.String("CommandOutput"), Prefix: jsii.String("ssm-output/"), Expiration: days(90)},
			{Id: jsii.String("Reports"), Prefix: jsii.String("reports/"), Expiration: days(p.Hub.ReportRetentionDays)},
			{Id: jsii.String("NoncurrentVersions"), NoncurrentVersionExpiration: days(30)},
		},
	})
	h.Bucket.Node().DefaultChild().(awss3.CfnBucket).OverrideLogicalId(jsii.String(BucketLogicalID))

	// SSM Run Command writes command output from the instances, with the
	// spoke accounts' credentials, under ssm-output/.
	if accounts := p.SpokeAccounts(); len(accounts) > 0 {
		var principals []awsiam.IPrincipal
		for _, a := range accounts {
			principals = append(principals, awsiam.NewAccountPrincipal(jsii.String(a)))
		}
		h.Bucket.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("SpokeCommandOutput"),
			Principals: &principals,
			Actions:    jsii.Strings("s3:PutObject"),
			Resources:  jsii.Strings(*h.Bucket.ArnForObjects(jsii.String("ssm-output/*"))),
		}))
		h.Key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("SpokeCommandOutput"),
			Principals: &principals,
			Actions:    jsii.Strings("kms:GenerateDataKey*", "kms:Encrypt"),
			Resources:  jsii.Strings("*"),
			Conditions: &map[string]interface{}{
				"StringEquals": map[string]interface{}{"kms:ViaService": "s3." + *h.Region() + ".amazonaws.com"},
			},
		}), jsii.Bool(false))
	}

	h.Topic = awssns.NewTopic(h.Stack, jsii.String("NotificationTopic"), &awssns.TopicProps{
		MasterKey:  h.Key,
		EnforceSSL: jsii.Bool(true),
	})
	if p.Hub.NotificationEmail != "" {
		h.Topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(p.Hub.NotificationEmail), nil))
	}

	// The HMAC key of approval links: generated by Secrets Manager, so it
	// is in no template and no parameter file.
	h.SigningSecret = awssecretsmanager.NewSecret(h.Stack, jsii.String("SigningSecret"), &awssecretsmanager.SecretProps{
		Description:   jsii.String("ec2patch " + p.Hub.NamePrefix + ": HMAC key that signs approval links"),
		EncryptionKey: h.Key,
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			PasswordLength:     jsii.Number(64),
			ExcludePunctuation: jsii.Bool(true),
		},
	})
}

// approvalAccessLogs names the approval API's access log group among the
// stack's log groups.
const approvalAccessLogs = "ApprovalApiAccess"

// approvalAPI is the HTTPS endpoint of approval links: GET and POST on
// /approvals/{approvalId}, both proxied to ApprovalCallback. The signed,
// expiring, single-use link is the authorization; the handler verifies it.
func (h *Stack) approvalAPI(accessLogs awslogs.LogGroup) {
	h.ApprovalAPI = awsapigateway.NewRestApi(h.Stack, jsii.String("ApprovalApi"), &awsapigateway.RestApiProps{
		Description:   jsii.String("ec2patch approval links: approve or reject a wave"),
		EndpointTypes: &[]awsapigateway.EndpointType{awsapigateway.EndpointType_REGIONAL},
		// Execution logging needs the account-wide API Gateway CloudWatch
		// role, which one stack must not own; access logs are enough here.
		CloudWatchRole: jsii.Bool(false),
		DeployOptions: &awsapigateway.StageOptions{
			StageName:            jsii.String(ApprovalStage),
			AccessLogDestination: awsapigateway.NewLogGroupLogDestination(accessLogs),
			AccessLogFormat: awsapigateway.AccessLogFormat_JsonWithStandardFields(&awsapigateway.JsonWithStandardFieldProps{
				Caller: jsii.Bool(true), HttpMethod: jsii.Bool(true), Ip: jsii.Bool(true), Protocol: jsii.Bool(true),
				RequestTime: jsii.Bool(true), ResourcePath: jsii.Bool(true), ResponseLength: jsii.Bool(true),
				Status: jsii.Bool(true), User: jsii.Bool(true),
			}),
			// A person clicks a link now and then: anything faster is abuse.
			ThrottlingRateLimit:  jsii.Number(10),
			ThrottlingBurstLimit: jsii.Number(20),
			TracingEnabled:       jsii.Bool(false),
		},
	})
	// The stack's outputs are the contract's keys: drop the CDK's own
	// endpoint output (ApprovalApiUrl is the one to use).
	h.ApprovalAPI.Node().TryRemoveChild(jsii.String("Endpoint"))
	// The validator refuses a link without its parameters before the
	// handler runs. Bodies have no model (a form post), so only the handler
	// checks them.
	validator := h.ApprovalAPI.AddRequestValidator(jsii.String("ApprovalParameters"), &awsapigateway.RequestValidatorOptions{
		ValidateRequestParameters: jsii.Bool(true),
		ValidateRequestBody:       jsii.Bool(true),
	})
	integration := awsapigateway.NewLambdaIntegration(h.Functions[contract.ApprovalCallback.Name], &awsapigateway.LambdaIntegrationOptions{
		Proxy:           jsii.Bool(true),
		AllowTestInvoke: jsii.Bool(false),
	})
	approval := h.ApprovalAPI.Root().AddResource(jsii.String(approvalsPath), nil).AddResource(jsii.String("{approvalId}"), nil)
	// GET shows the decision page (it changes nothing: mail scanners
	// prefetch links); POST, from that page's form, decides.
	approval.AddMethod(jsii.String("GET"), integration, &awsapigateway.MethodOptions{
		AuthorizationType: awsapigateway.AuthorizationType_NONE,
		RequestValidator:  validator,
		RequestParameters: &map[string]*bool{
			"method.request.path.approvalId":       jsii.Bool(true),
			"method.request.querystring.decision":  jsii.Bool(true),
			"method.request.querystring.expires":   jsii.Bool(true),
			"method.request.querystring.signature": jsii.Bool(true),
		},
	})
	approval.AddMethod(jsii.String("POST"), integration, &awsapigateway.MethodOptions{
		AuthorizationType: awsapigateway.AuthorizationType_NONE,
		RequestValidator:  validator,
		RequestParameters: &map[string]*bool{"method.request.path.approvalId": jsii.Bool(true)},
	})
	// The URL is built from the API's ID and the literal stage name rather
	// than from the stage resource, which moto's CloudFormation does not
	// create: links are then the same on AWS and on the emulator.
	h.ApprovalURL = awscdk.Fn_Join(jsii.String(""), &[]*string{
		jsii.String("https://"), h.ApprovalAPI.RestApiId(), jsii.String(".execute-api."), awscdk.Aws_REGION(),
		jsii.String("."), awscdk.Aws_URL_SUFFIX(), jsii.String("/" + ApprovalStage + "/" + approvalsPath),
	})
	h.Functions[contract.SendApprovalRequest.Name].AddEnvironment(jsii.String(contract.EnvApprovalURL), h.ApprovalURL, nil)
}

// logGroups creates one log group per function and one for the state
// machine, so retention and encryption are explicit (no logRetention custom
// resource).
func (h *Stack) logGroups(p config.Params) map[string]awslogs.LogGroup {
	retention, ok := retentionDays[p.Hub.LogRetentionDays]
	if !ok {
		panic(fmt.Sprintf("hub: log_retention_days %d is not a CloudWatch Logs retention", p.Hub.LogRetentionDays))
	}
	groups := map[string]awslogs.LogGroup{}
	names := []string{"StateMachine", approvalAccessLogs}
	for _, fn := range contract.Functions() {
		names = append(names, fn.Name)
	}
	for _, name := range names {
		groups[name] = awslogs.NewLogGroup(h.Stack, jsii.String(name+"Logs"), &awslogs.LogGroupProps{
			Retention:     retention,
			EncryptionKey: h.Key,
			RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
		})
	}
	return groups
}

var retentionDays = map[int]awslogs.RetentionDays{
	1: awslogs.RetentionDays_ONE_DAY, 3: awslogs.RetentionDays_THREE_DAYS, 5: awslogs.RetentionDays_FIVE_DAYS,
	7: awslogs.RetentionDays_ONE_WEEK, 14: awslogs.RetentionDays_TWO_WEEKS, 30: awslogs.RetentionDays_ONE_MONTH,
	60: awslogs.RetentionDays_TWO_MONTHS, 90: awslogs.RetentionDays_THREE_MONTHS, 120: awslogs.RetentionDays_FOUR_MONTHS,
	150: awslogs.RetentionDays_FIVE_MONTHS, 180: awslogs.RetentionDays_SIX_MONTHS, 365: awslogs.RetentionDays_ONE_YEAR,
	400: awslogs.RetentionDays_THIRTEEN_MONTHS, 545: awslogs.RetentionDays_EIGHTEEN_MONTHS, 731: awslogs.RetentionDays_TWO_YEARS,
	1096: awslogs.RetentionDays_THREE_YEARS, 1827: awslogs.RetentionDays_FIVE_YEARS, 2192: awslogs.RetentionDays_SIX_YEARS,
	2557: awslogs.RetentionDays_SEVEN_YEARS, 2922: awslogs.RetentionDays_EIGHT_YEARS, 3288: awslogs.RetentionDays_NINE_YEARS,
	3653: awslogs.RetentionDays_TEN_YEARS,
}

// roles creates the task role shared by the spoke-calling handlers and one
// role for each other handler, each with only what its handler calls.
func (h *Stack) roles(p config.Params) map[string]awsiam.Role {
	lambdaPrincipal := awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil)
	roles := map[string]awsiam.Role{}

	h.TaskRole = awsiam.NewRole(h.Stack, jsii.String("PatchTaskRole"), &awsiam.RoleProps{
		RoleName:    jsii.String(contract.HubTaskRoleName(p.Hub.NamePrefix)),
		Description: jsii.String("Runs the ec2patch handlers that assume the spoke role"),
		AssumedBy:   lambdaPrincipal,
	})
	// The spoke roles of exactly the plan's accounts and the extra spoke
	// accounts: PrepareRun refuses a run naming any other account, and IAM
	// would refuse the assumption anyway.
	var spokeRoles []*string
	for _, a := range p.SpokeAccounts() {
		spokeRoles = append(spokeRoles, jsii.String(contract.SpokeRoleARN(*awscdk.Aws_PARTITION(), a, p.Spoke.RoleName)))
	}
	if len(spokeRoles) > 0 {
		h.TaskRole.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("AssumeSpokeRoles"),
			Actions:   jsii.Strings("sts:AssumeRole"),
			Resources: &spokeRoles,
		}))
	}
	h.grant("PatchTaskRole", h.TaskRole) // grants.go: explicit actions, with reasons
	for _, fn := range contract.SpokeFunctions() {
		roles[fn.Name] = h.TaskRole
	}

	own := func(fn contract.Function) awsiam.Role {
		r := awsiam.NewRole(h.Stack, jsii.String(fn.Name+"Role"), &awsiam.RoleProps{
			Description: jsii.String("Runs the ec2patch " + fn.Name + " handler"),
			AssumedBy:   lambdaPrincipal,
		})
		roles[fn.Name] = r
		h.grant(fn.Name+"Role", r) // grants.go: explicit actions, with reasons
		return r
	}
	for _, fn := range []contract.Function{contract.PrepareRun, contract.RecordTargetFailure, contract.EvaluateWave,
		contract.WriteRunReport, contract.SendApprovalRequest,
		// ApprovalCallback also answers the orchestrator's task tokens:
		// granted in NewStack, once the state machine exists.
		contract.ApprovalCallback,
		// The waiting records: AwaitSsmCommand writes them,
		// CommandStatusEvents and the reconciler (the task role) complete
		// them.
		contract.AwaitSsmCommand, contract.CommandStatusEvents} {
		own(fn)
	}

	// DescribeAlarms is read-only and takes alarm names at run time. It is
	// granted on "*" because CloudWatch returns composite alarms only to a
	// DescribeAlarms permission scoped to "*", and a halt alarm is often a
	// composite one; a narrower scope would make such an alarm look missing.
	alarms := own(contract.CheckHaltAlarms)
	alarms.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("DescribeHaltAlarms"),
		Actions:   jsii.Strings("cloudwatch:DescribeAlarms"),
		Resources: jsii.Strings("*"),
	}))
	return roles
}

// functions creates one Lambda per contract.Functions entry.
func (h *Stack) functions(p config.Params, codeDir string, logs map[string]awslogs.LogGroup, roles map[string]awsiam.Role) {
	runDefaults := mustJSON(p.RunDefaults())
	planWaves := mustJSON(p.Waves)
	ttlDays := strconv.Itoa(p.Hub.RecordRetentionDays)
	spokeEnv := map[string]*string{
		contract.EnvTable:          h.Table.TableName(),
		contract.EnvBucket:         h.Bucket.BucketName(),
		contract.EnvSpokeRoleName:  jsii.String(p.Spoke.RoleName),
		contract.EnvExternalID:     jsii.String(p.Hub.CrossAccountExternalID),
		contract.EnvCommandTimeout: jsii.String(strconv.Itoa(p.Hub.CommandTimeoutSeconds)),
		contract.EnvRecordTTLDays:  jsii.String(ttlDays),
	}
	env := map[string]map[string]*string{
		contract.PrepareRun.Name: {
			contract.EnvTable:         h.Table.TableName(),
			contract.EnvBucket:        h.Bucket.BucketName(),
			contract.EnvRunDefaults:   jsii.String(runDefaults),
			contract.EnvPlanWaves:     jsii.String(planWaves),
			contract.EnvRecordTTLDays: jsii.String(ttlDays),
			contract.EnvTopicARN:      h.Topic.TopicArn(),
		},
		contract.RecordTargetFailure.Name: {
			contract.EnvTable:         h.Table.TableName(),
			contract.EnvRecordTTLDays: jsii.String(ttlDays),
		},
		contract.EvaluateWave.Name: {
			contract.EnvTable:         h.Table.TableName(),
			contract.EnvBucket:        h.Bucket.BucketName(),
			contract.EnvRecordTTLDays: jsii.String(ttlDays),
			contract.EnvTopicARN:      h.Topic.TopicArn(),
		},
		contract.WriteRunReport.Name: {
			contract.EnvTable:         h.Table.TableName(),
			contract.EnvBucket:        h.Bucket.BucketName(),
			contract.EnvTopicARN:      h.Topic.TopicArn(),
			contract.EnvRecordTTLDays: jsii.String(ttlDays),
		},
		// EnvApprovalURL is added by approvalAPI, once the API exists.
		contract.SendApprovalRequest.Name: {
			contract.EnvTable:         h.Table.TableName(),
			contract.EnvTopicARN:      h.Topic.TopicArn(),
			contract.EnvSigningSecret: h.SigningSecret.SecretArn(),
			contract.EnvRecordTTLDays: jsii.String(ttlDays),
		},
		contract.ApprovalCallback.Name: {
			contract.EnvTable:         h.Table.TableName(),
			contract.EnvSigningSecret: h.SigningSecret.SecretArn(),
			contract.EnvRecordTTLDays: jsii.String(ttlDays),
		},
		contract.AwaitSsmCommand.Name: {
			contract.EnvTable:         h.Table.TableName(),
			contract.EnvRecordTTLDays: jsii.String(ttlDays),
		},
		contract.CommandStatusEvents.Name: {
			contract.EnvTable:         h.Table.TableName(),
			contract.EnvRecordTTLDays: jsii.String(ttlDays),
		},
	}
	for _, fn := range contract.SpokeFunctions() {
		env[fn.Name] = spokeEnv
	}

	var artifacts awss3.IBucket
	if p.Hub.ArtifactBucket != "" {
		artifacts = awss3.Bucket_FromBucketName(h.Stack, jsii.String("ArtifactBucket"), jsii.String(p.Hub.ArtifactBucket))
	}
	for _, fn := range contract.Functions() {
		vars := map[string]*string{contract.EnvHandler: jsii.String(fn.Dir), contract.EnvEnvironment: jsii.String(p.Hub.NamePrefix)}
		for k, v := range env[fn.Name] {
			vars[k] = v
		}
		h.Functions[fn.Name] = awslambda.NewFunction(h.Stack, jsii.String(fn.Name), &awslambda.FunctionProps{
			Description:  jsii.String("ec2patch " + fn.Name),
			Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
			Architecture: awslambda.Architecture_ARM_64(),
			Handler:      jsii.String("bootstrap"),
			Code:         code(artifacts, p.Hub.ArtifactKey, codeDir, fn),
			MemorySize:   jsii.Number(256),
			Timeout:      awscdk.Duration_Seconds(jsii.Number(fn.Timeout.Seconds())),
			Environment:  &vars,
			Role:         roles[fn.Name],
			LogGroup:     logs[fn.Name],
		})
	}
}

// code is a handler's deployment package: <artifact_key>/<dir>.zip in the
// artifact bucket when one is configured (artifact_key is a key prefix, one
// zip per handler under it), otherwise the directory <codeDir>/<dir> that
// `make build` fills with the handler's bootstrap.
func code(artifacts awss3.IBucket, artifactKey, codeDir string, fn contract.Function) awslambda.Code {
	if artifacts != nil {
		return awslambda.Code_FromBucket(artifacts, jsii.String(artifactKey+"/"+fn.Dir+".zip"), nil)
	}
	return awslambda.Code_FromAsset(jsii.String(filepath.Join(codeDir, fn.Dir)), nil)
}

// resumeWaits lets the two handlers that finish a target's wait answer the
// orchestrator's task tokens: CommandStatusEvents on its own role, and the
// reconciler on the task role it shares with the other spoke-calling
// handlers, which is why that grant is a policy of its own, limited to the
// reconciler's own calls by lambda:SourceFunctionArn. (It is not in the
// role's default policy: the function depends on that one, and the
// condition names the function.)
func (h *Stack) resumeWaits(roles map[string]awsiam.Role) {
	orchestrator := h.StateMachine.Orchestrator.StateMachineArn()
	roles[contract.CommandStatusEvents.Name].AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ResumeWaitingTargets"),
		Actions:   jsii.Strings("states:SendTaskSuccess"),
		Resources: jsii.Strings(*orchestrator),
	}))
	awsiam.NewPolicy(h.Stack, jsii.String("ReconcilerResumePolicy"), &awsiam.PolicyProps{
		Roles: &[]awsiam.IRole{roles[contract.PollSsmCommand.Name]},
		Statements: &[]awsiam.PolicyStatement{awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("ReconcilerResumesWaitingTargets"),
			Actions:   jsii.Strings("states:SendTaskSuccess"),
			Resources: jsii.Strings(*orchestrator),
			Conditions: &map[string]interface{}{
				"ArnEquals": map[string]interface{}{
					"lambda:SourceFunctionArn": h.Functions[contract.PollSsmCommand.Name].FunctionArn(),
				},
			},
		})},
	})
}

// events creates the command event bus, which accepts events from the
// plan's spoke accounts only, its rule to CommandStatusEvents, and the
// schedule of the reconciler. Both rules retry and then keep what they
// could not deliver in an encrypted dead-letter queue.
func (h *Stack) events(p config.Params) {
	h.EventBus = awsevents.NewEventBus(h.Stack, jsii.String("CommandEventBus"), &awsevents.EventBusProps{
		EventBusName: jsii.String(contract.HubEventBusName(p.Hub.NamePrefix)),
		Description:  jsii.String("ec2patch " + p.Hub.NamePrefix + ": SSM command status events from the spokes"),
	})
	if accounts := p.SpokeAccounts(); len(accounts) > 0 {
		var principals []awsiam.IPrincipal
		for _, a := range accounts {
			principals = append(principals, awsiam.NewAccountPrincipal(jsii.String(a)))
		}
		h.EventBus.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("SpokeCommandEvents"),
			Principals: &principals,
			Actions:    jsii.Strings("events:PutEvents"),
			Resources:  jsii.Strings(*h.EventBus.EventBusArn()),
		}))
	}

	// EventBridge encrypts what it puts in the queue with the stack's key.
	h.Key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("EventBridgeDeadLetters"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("events.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]interface{}{
			"StringEquals": map[string]interface{}{"aws:SourceAccount": *h.Account()},
		},
	}), jsii.Bool(false))
	h.DeadLetterQueue = awssqs.NewQueue(h.Stack, jsii.String("EventDeadLetterQueue"), &awssqs.QueueProps{
		Encryption:          awssqs.QueueEncryption_KMS,
		EncryptionMasterKey: h.Key,
		EnforceSSL:          jsii.Bool(true),
		RetentionPeriod:     awscdk.Duration_Days(jsii.Number(14)),
	})

	cdknag.NagSuppressions_AddResourceSuppressions(h.DeadLetterQueue, &[]*cdknag.NagPackSuppression{{
		Id:     jsii.String("AwsSolutions-SQS3"),
		Reason: jsii.String("This queue is the dead-letter queue of the command event and reconcile rules' targets"),
	}}, jsii.Bool(false))

	h.CommandEventsRule = awsevents.NewRule(h.Stack, jsii.String("CommandEventsRule"), &awsevents.RuleProps{
		Description:  jsii.String("Resumes the targets waiting for AWS-RunPatchBaseline commands"),
		EventBus:     h.EventBus,
		EventPattern: spokeevents.CommandEventPattern(),
		Targets: &[]awsevents.IRuleTarget{
			awseventstargets.NewLambdaFunction(h.Functions[contract.CommandStatusEvents.Name], &awseventstargets.LambdaFunctionProps{
				DeadLetterQueue: h.DeadLetterQueue,
				RetryAttempts:   jsii.Number(8),
				MaxEventAge:     awscdk.Duration_Hours(jsii.Number(2)),
			}),
		},
	})

	// A late reconcile is as good as a missed one: the next comes within
	// the interval, so an event older than that is not retried.
	interval := awscdk.Duration_Minutes(jsii.Number(float64(p.Hub.ReconcileIntervalMinutes)))
	h.ReconcileRule = awsevents.NewRule(h.Stack, jsii.String("ReconcileSchedule"), &awsevents.RuleProps{
		Description: jsii.String("Runs the ec2patch reconciler over every waiting target"),
		Schedule:    awsevents.Schedule_Rate(interval),
		Targets: &[]awsevents.IRuleTarget{
			awseventstargets.NewLambdaFunction(h.Functions[contract.PollSsmCommand.Name], &awseventstargets.LambdaFunctionProps{
				DeadLetterQueue: h.DeadLetterQueue,
				RetryAttempts:   jsii.Number(2),
				MaxEventAge:     interval,
			}),
		},
	})
}

func mustJSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("hub: %v", err))
	}
	return string(data)
}

func (h *Stack) outputs() {
	out := func(key string, value *string, desc string) {
		awscdk.NewCfnOutput(h.Stack, jsii.String(key), &awscdk.CfnOutputProps{Value: value, Description: jsii.String(desc)})
	}
	out(contract.OutputOrchestratorARN, h.StateMachine.Orchestrator.StateMachineArn(), "Start a patch run here")
	out(contract.OutputTableName, h.Table.TableName(), "State table: runs, waves, targets")
	out(contract.OutputBucketName, h.Bucket.BucketName(), "Manifests, SSM command output and run reports")
	out(contract.OutputTopicARN, h.Topic.TopicArn(), "Run notifications")
	out(contract.OutputTaskRoleARN, h.TaskRole.RoleArn(), "The role every spoke trusts")
	out(contract.OutputApprovalURL, h.ApprovalURL, "Base URL of approval links")
	out(contract.OutputEventBusARN, h.EventBus.EventBusArn(), "The bus every spoke forwards command events to")
}

func (h *Stack) suppressions() {
	nag := func(id, reason string) *cdknag.NagPackSuppression {
		return &cdknag.NagPackSuppression{Id: jsii.String(id), Reason: jsii.String(reason)}
	}
	cdknag.NagSuppressions_AddResourceSuppressions(h.Bucket, &[]*cdknag.NagPackSuppression{
		nag("AwsSolutions-S1", "Only the hub's own roles and SSM write here; object-level access is audited "+
			"with CloudTrail data events, and a log bucket would need its own log bucket"),
	}, jsii.Bool(false))
	cdknag.NagSuppressions_AddResourceSuppressions(h.SigningSecret, &[]*cdknag.NagPackSuppression{
		nag("AwsSolutions-SMG4", "Rotating the signing key would invalidate every approval link in flight; "+
			"links expire within approval_timeout_minutes and work once, which bounds a leaked link instead"),
	}, jsii.Bool(false))
	cdknag.NagSuppressions_AddResourceSuppressions(h.ApprovalAPI, &[]*cdknag.NagPackSuppression{
		nag("AwsSolutions-APIG4", "The signed, expiring, single-use approval link is the authorization: ApprovalCallback "+
			"verifies its HMAC signature and expiry and records the decision once; approvers have no AWS identity"),
		nag("AwsSolutions-COG4", "Approvers follow a signed link from a notification; they have no Cognito identity, "+
			"and the link's signature, expiry and single use are verified by ApprovalCallback"),
		nag("AwsSolutions-APIG3", "No WAF: the API serves only signed links, is throttled at the stage (10 rps, burst 20) "+
			"and refuses any unsigned or replayed request without side effects"),
		nag("AwsSolutions-APIG6", "Access logs go to an encrypted log group; execution logging would need the "+
			"account-wide API Gateway CloudWatch role, which this stack does not own"),
	}, jsii.Bool(true))
	cdknag.NagSuppressions_AddStackSuppressions(h.Stack, &[]*cdknag.NagPackSuppression{
		nag("AwsSolutions-SF2", "X-Ray is excluded by requirement: the product ships pure CloudFormation without X-Ray"),
		nag("AwsSolutions-IAM5", "Wildcards come from CDK grant methods scoped to this stack's table, bucket "+
			"prefixes and key (action groups such as s3:GetObject*, kms:GenerateDataKey*, the table's index/*), "+
			"from lambda:InvokeFunction on the functions' versions (:*), from CloudWatch Logs delivery "+
			"actions, which support no resource-level permissions, and from cloudwatch:DescribeAlarms, which "+
			"returns composite alarms only when granted on *"),
	}, jsii.Bool(true))
}
