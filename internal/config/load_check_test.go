package config_test

import (
	"testing"

	"github.com/ec2patch/ec2patch/internal/config"
	"github.com/ec2patch/ec2patch/params"
)

func TestCommittedParamsLoad(t *testing.T) {
	for _, env := range config.Envs(params.Files) {
		if _, err := config.Load(params.Files, env); err != nil {
			t.Errorf("%s: %v", env, err)
		}
	}
}
