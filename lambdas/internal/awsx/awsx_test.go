package awsx

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ec2patch/ec2patch/internal/contract"
)

func TestEnvNamesEveryProblem(t *testing.T) {
	vars := map[string]string{"TTL": "zero", "JSON": `{"a":1,"b":2}`, "SET": "x"}
	env := &Env{Lookup: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
	var into struct {
		A int `json:"a"`
	}
	if env.String("SET") != "x" || env.StringOr("UNSET", "def") != "def" {
		t.Error("String or StringOr returned the wrong value")
	}
	env.String("TABLE")
	env.PositiveInt("TTL")
	env.JSON("JSON", &into)
	err := env.Err()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"missing environment variable TABLE", "TTL=\"zero\" must be a positive integer", "JSON is not valid JSON"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestS3PathStyleOnlyWithACustomEndpoint(t *testing.T) {
	if NewS3(aws.Config{Region: "us-east-1"}).Options().UsePathStyle {
		t.Error("path style without a custom endpoint")
	}
	if !NewS3(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:5000")}).Options().UsePathStyle {
		t.Error("virtual-host style with a custom endpoint")
	}
}

func TestMetricsNeedsTheEnvironment(t *testing.T) {
	env := &Env{Lookup: func(string) (string, bool) { return "", false }}
	if env.Metrics() == nil {
		t.Fatal("no writer")
	}
	if err := env.Err(); err == nil || !strings.Contains(err.Error(), contract.EnvEnvironment) {
		t.Errorf("Err = %v, want the missing %s named", err, contract.EnvEnvironment)
	}
	env = &Env{Lookup: func(k string) (string, bool) { return "ec2patch-dev", k == contract.EnvEnvironment }}
	if env.Metrics(); env.Err() != nil {
		t.Errorf("Err = %v with the environment set", env.Err())
	}
}
