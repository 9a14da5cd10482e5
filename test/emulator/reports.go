package emulator

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ec2patch/ec2patch/internal/contract"
)

// ReadObject reads one object of the hub bucket.
func (h *Harness) ReadObject(ctx context.Context, key string) ([]byte, error) {
	out, err := h.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(h.Outputs[contract.OutputBucketName]),
		Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("emulator: read s3 object %s: %w", key, err)
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// InstanceHistory answers "when was this instance last patched, and with
// what result" as an operator would: one Query on the instance's ledger
// partition, newest first, at most limit rows (all when 0).
func (h *Harness) InstanceHistory(ctx context.Context, account, region, instanceID string, limit int) ([]contract.LedgerEntry, error) {
	in := &dynamodb.QueryInput{
		TableName:                aws.String(h.Outputs[contract.OutputTableName]),
		KeyConditionExpression:   aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames: map[string]string{"#pk": contract.AttrPK, "#sk": contract.AttrSK},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":pk":     &ddbtypes.AttributeValueMemberS{Value: contract.LedgerPK(account, region, instanceID)},
			":prefix": &ddbtypes.AttributeValueMemberS{Value: contract.LedgerSKPrefix}},
		ScanIndexForward: aws.Bool(false),
	}
	if limit > 0 {
		in.Limit = aws.Int32(int32(min(limit, 1<<20)))
	}
	out, err := dynamodb.NewFromConfig(h.hub).Query(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("emulator: query the ledger of %s: %w", instanceID, err)
	}
	entries := make([]contract.LedgerEntry, 0, len(out.Items))
	for _, item := range out.Items {
		var e contract.LedgerEntry
		if err := attributevalue.UnmarshalMapWithOptions(item, &e, func(o *attributevalue.DecoderOptions) { o.TagKey = "json" }); err != nil {
			return nil, fmt.Errorf("emulator: decode a ledger row of %s: %w", instanceID, err)
		}
		entries = append(entries, e)
	}
	return entries, nil
}
