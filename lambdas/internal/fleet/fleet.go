// Package fleet holds the spoke look-ups that more than one handler makes.
package fleet

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// InstanceInformer is SSM's DescribeInstanceInformation.
type InstanceInformer interface {
	DescribeInstanceInformation(ctx context.Context, in *ssm.DescribeInstanceInformationInput, optFns ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error)
}

// maxInfoIDs is DescribeInstanceInformation's limit on InstanceIds values.
const maxInfoIDs = 50

// PingStatuses returns the SSM ping status of every listed instance that
// SSM knows; an instance it does not know is absent from the map.
func PingStatuses(ctx context.Context, client InstanceInformer, ids []string) (map[string]ssmtypes.PingStatus, error) {
	ping := map[string]ssmtypes.PingStatus{}
	for batch := range slices.Chunk(ids, maxInfoIDs) {
		in := &ssm.DescribeInstanceInformationInput{
			Filters:    []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: batch}},
			MaxResults: aws.Int32(maxInfoIDs),
		}
		for {
			out, err := client.DescribeInstanceInformation(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("describe SSM instance information: %w", err)
			}
			for _, info := range out.InstanceInformationList {
				ping[aws.ToString(info.InstanceId)] = info.PingStatus
			}
			if aws.ToString(out.NextToken) == "" {
				break
			}
			in.NextToken = out.NextToken
		}
	}
	return ping, nil
}
