package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"
)

// keyProblems returns a problem for every object key in data that
// encoding/json accepts but an operator did not mean: a key given twice
// (the decoder silently keeps the last, so `"dryRun": true, ... "dryRun":
// false` would install) and a key that matches a field only when case is
// ignored (`"dryrun"`), which the decoder also takes silently. data must
// already have decoded into a value of type t, so it is valid JSON whose
// nesting t bounds.
func keyProblems(data []byte, t reflect.Type) []string {
	dec := json.NewDecoder(bytes.NewReader(data))
	var out []string
	if err := walkKeys(dec, t, "", &out); err != nil {
		return nil // unreachable for data that decoded; the decoder's error stands
	}
	return out
}

func walkKeys(dec *json.Decoder, t reflect.Type, path string, out *[]string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		var fields map[string]reflect.Type
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = jsonFields(t)
		} else if t != nil && t.Kind() == reflect.Map {
			elem = t.Elem()
		}
		seen := map[string]bool{}
		for dec.More() {
			keyTok, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := keyTok.(string)
			at := join(path, key)
			if seen[key] {
				*out = append(*out, at+": is given twice; give each key once")
			}
			seen[key] = true
			ft := elem
			if fields != nil {
				ft = fields[key]
				if ft == nil {
					if name, ok := caseVariant(fields, key); ok {
						*out = append(*out, fmt.Sprintf("%s: unknown field (names are case-sensitive: did you mean %s?)", at, name))
						ft = fields[name]
					}
				}
			}
			if err := walkKeys(dec, ft, at, out); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
		return err
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walkKeys(dec, elem, fmt.Sprintf("%s[%d]", path, i), out); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
		return err
	}
	return nil
}

// caseVariant finds the field a key names when case is ignored.
func caseVariant(fields map[string]reflect.Type, key string) (string, bool) {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return name, true
		}
	}
	return "", false
}

// checkUTF8 refuses bytes that are not UTF-8: encoding/json would replace
// them with U+FFFD and carry on, so a name could differ from what was sent.
func checkUTF8(data []byte) error {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return fmt.Errorf("input is not valid UTF-8 at byte %d", i)
		}
		i += size
	}
	return nil
}
