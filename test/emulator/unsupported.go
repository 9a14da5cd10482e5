package emulator

import (
	"encoding/json"
	"fmt"
	"slices"
)

// motoSkips are the resource types moto's CloudFormation skips with a
// warning: such a resource is never created, so it has no attributes.
var motoSkips = []string{"AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm", "AWS::Scheduler::Schedule",
	"AWS::SNS::TopicPolicy", "AWS::SNS::Subscription"}

// dropGetAttsOfSkipped removes from a template every resource (and output)
// that reads an attribute of a resource moto skips, such as a dashboard
// whose alarm widget lists the alarms' ARNs: moto rejects the whole stack
// over one such Fn::GetAtt. Removal repeats until no reference is left, and
// DependsOn entries naming a removed resource go too. What is removed is
// monitoring, which the emulator cannot run anyway; the template tests
// assert on it.
func dropGetAttsOfSkipped(template []byte) ([]byte, error) {
	var t map[string]any
	if err := json.Unmarshal(template, &t); err != nil {
		return nil, fmt.Errorf("emulator: decode template: %w", err)
	}
	resources, _ := t["Resources"].(map[string]any)
	gone := map[string]bool{}
	for name, r := range resources {
		if typ, _ := r.(map[string]any)["Type"].(string); slices.Contains(motoSkips, typ) {
			gone[name] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for name, r := range resources {
			if !gone[name] && readsAttrOf(r.(map[string]any)["Properties"], gone) {
				gone[name], changed = true, true
			}
		}
	}
	removed := false
	for name := range resources {
		if gone[name] && !slices.Contains(motoSkips, typeOf(resources[name])) {
			delete(resources, name)
			removed = true
		}
	}
	if !removed {
		return template, nil
	}
	for _, r := range resources {
		res := r.(map[string]any)
		if deps, ok := res["DependsOn"].([]any); ok {
			res["DependsOn"] = slices.DeleteFunc(deps, func(d any) bool { s, _ := d.(string); return gone[s] && resources[s] == nil })
		}
	}
	if outputs, ok := t["Outputs"].(map[string]any); ok {
		for name, o := range outputs {
			if readsAttrOf(o, gone) {
				delete(outputs, name)
			}
		}
	}
	return json.Marshal(t)
}

func typeOf(r any) string {
	typ, _ := r.(map[string]any)["Type"].(string)
	return typ
}

// readsAttrOf tells whether v holds an Fn::GetAtt of a resource in names.
func readsAttrOf(v any, names map[string]bool) bool {
	switch x := v.(type) {
	case map[string]any:
		if ga, ok := x["Fn::GetAtt"].([]any); ok && len(ga) > 0 {
			if s, _ := ga[0].(string); names[s] {
				return true
			}
		}
		for _, e := range x {
			if readsAttrOf(e, names) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if readsAttrOf(e, names) {
				return true
			}
		}
	}
	return false
}
