package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// cmdSchemas turns Kubernetes' OpenAPI v2 document (api/openapi-spec/
// swagger.json, shipped in the k8s.io/kubernetes Go module) into the
// standalone, strict JSON schemas kubeconform reads, one file per kind,
// named as kubeconform's -schema-location template expects:
// {{ .ResourceKind }}{{ .KindSuffix }}.json, e.g. deployment-apps-v1.json.
// It does what kubeconform's openapi2jsonschema.py does with --strict
// --standalone: every object with properties rejects other properties,
// IntOrString and Quantity accept numbers as well as strings.
func cmdSchemas(args []string) error {
	fs := flag.NewFlagSet("schemas", flag.ContinueOnError)
	spec := fs.String("spec", "", "Kubernetes swagger.json")
	out := fs.String("out", "", "output directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *spec == "" || *out == "" {
		return fmt.Errorf("-spec and -out are required")
	}
	raw, err := os.ReadFile(*spec)
	if err != nil {
		return err
	}
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("%s: %w", *spec, err)
	}
	if len(doc.Definitions) == 0 {
		return fmt.Errorf("%s has no definitions", *spec)
	}
	defs := map[string]any{}
	for name, d := range doc.Definitions {
		switch {
		case strings.HasSuffix(name, ".util.intstr.IntOrString"):
			defs[name] = map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
		case strings.HasSuffix(name, ".api.resource.Quantity"):
			defs[name] = map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
		default:
			defs[name] = strictify(d)
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	n := 0
	names := make([]string, 0, len(doc.Definitions))
	for name := range doc.Definitions {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		gvks, _ := doc.Definitions[name]["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			gvk, _ := g.(map[string]any)
			group, _ := gvk["group"].(string)
			version, _ := gvk["version"].(string)
			kind, _ := gvk["kind"].(string)
			if kind == "" || version == "" {
				continue
			}
			apiVersion := version
			if group != "" {
				apiVersion = group + "/" + version
			}
			// The closure of definitions this kind refers to.
			closure := map[string]any{}
			collectRefs(defs[name], defs, closure)
			closure[name] = defs[name]
			root := map[string]any{
				"$schema":     "http://json-schema.org/draft-04/schema#",
				"definitions": closure,
				"allOf": []any{
					map[string]any{"$ref": "#/definitions/" + name},
					// apiVersion and kind must name this kind exactly.
					map[string]any{
						"properties": map[string]any{
							"apiVersion": map[string]any{"enum": []any{apiVersion}},
							"kind":       map[string]any{"enum": []any{kind}},
						},
						"required": []any{"apiVersion", "kind"},
					},
				},
			}
			b, err := json.Marshal(root)
			if err != nil {
				return err
			}
			file := filepath.Join(*out, strings.ToLower(kind)+kindSuffix(apiVersion)+".json")
			if err := os.WriteFile(file, b, 0o644); err != nil {
				return err
			}
			n++
		}
	}
	fmt.Printf("  ok    wrote %d strict schemas to %s\n", n, *out)
	return nil
}

// kindSuffix mirrors kubeconform's registry.schemaPath: "-v1" for the core
// group, "-apps-v1", "-rbac-v1" (first DNS label of the group) otherwise.
func kindSuffix(apiVersion string) string {
	groupParts := strings.Split(apiVersion, "/")
	versionParts := strings.Split(groupParts[0], ".")
	s := "-" + strings.ToLower(versionParts[0])
	if len(groupParts) > 1 {
		s += "-" + strings.ToLower(groupParts[1])
	}
	return s
}

// strictify returns a copy of a schema in which every object that lists
// properties rejects any other property.
func strictify(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x)+1)
		for k, val := range x {
			if k == "properties" {
				// Property names are data, not keywords.
				props := map[string]any{}
				for pn, pv := range val.(map[string]any) {
					props[pn] = strictify(pv)
				}
				out[k] = props
				continue
			}
			out[k] = strictify(val)
		}
		if _, ok := x["properties"]; ok {
			if _, has := x["additionalProperties"]; !has {
				out["additionalProperties"] = false
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = strictify(x[i])
		}
		return out
	default:
		return v
	}
}

// collectRefs adds every definition v refers to, transitively, to into.
func collectRefs(v any, defs map[string]any, into map[string]any) {
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, "#/definitions/")
			if _, seen := into[name]; !seen {
				if d, ok := defs[name]; ok {
					into[name] = d
					collectRefs(d, defs, into)
				}
			}
		}
		for _, val := range x {
			collectRefs(val, defs, into)
		}
	case []any:
		for _, val := range x {
			collectRefs(val, defs, into)
		}
	}
}
