package config_test

import (
	"errors"
	"testing"

	"github.com/ec2patch/ec2patch/internal/config"
	"github.com/ec2patch/ec2patch/params"
)

// FuzzParse: a params document either loads and validates clean, or fails
// with a config.Error that names the file and at least one problem.
func FuzzParse(f *testing.F) {
	for _, env := range config.Envs(params.Files) {
		data, err := params.Files.ReadFile(env + ".json")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"hub": {"name_prefix": 1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := config.Parse("params/fuzz.json", data)
		if err != nil {
			var ce *config.Error
			if !errors.As(err, &ce) || ce.File != "params/fuzz.json" || len(ce.Problems) == 0 {
				t.Fatalf("unexpected error shape: %T %v", err, err)
			}
			return
		}
		if problems := p.Validate(); len(problems) > 0 {
			t.Fatalf("loaded params fail validation: %v", problems)
		}
	})
}
