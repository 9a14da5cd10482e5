package contract

// regions are the AWS region names a wave may target: the commercial,
// China and GovCloud partitions. Keep sorted; add new regions as AWS opens them.
var regions = []string{
	"af-south-1",
	"ap-east-1", "ap-east-2",
	"ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
	"ap-south-1", "ap-south-2",
	"ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
	"ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
	"ca-central-1", "ca-west-1",
	"cn-north-1", "cn-northwest-1",
	"eu-central-1", "eu-central-2",
	"eu-north-1",
	"eu-south-1", "eu-south-2",
	"eu-west-1", "eu-west-2", "eu-west-3",
	"il-central-1",
	"me-central-1", "me-south-1",
	"mx-central-1",
	"sa-east-1",
	"us-east-1", "us-east-2",
	"us-gov-east-1", "us-gov-west-1",
	"us-west-1", "us-west-2",
}

// Partition returns the ARN partition of a region.
func Partition(region string) string {
	switch {
	case len(region) >= 3 && region[:3] == "cn-":
		return "aws-cn"
	case len(region) >= 7 && region[:7] == "us-gov-":
		return "aws-us-gov"
	}
	return "aws"
}
