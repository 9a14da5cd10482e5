// This directory holds the project's pinned Node tools (package.json). The
// go.mod keeps its node_modules out of the main module's ./... patterns.
module github.com/ec2patch/ec2patch/tools

go 1.26
