// Package params embeds the per-environment parameter files, so the CDK app
// and the tests read exactly what is committed.
package params

import "embed"

// Files holds every params/<env>.json.
//
//go:embed *.json
var Files embed.FS
