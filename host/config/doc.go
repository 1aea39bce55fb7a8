// Package config reads, checks and overrides model configs for the zoo host.
//
// It is model-agnostic: a plugin declares its keys as a Schema (section, key,
// type, default, help) and the host parses the user's file (Paddle's INI
// dialect with Python-literal values, or the same keys as YAML), applies
// command-line flags with Paddle's merge_configs rule and --set overrides,
// validates the result against the schema and hands it to sdk, which sends
// it to the plugin as JSON. The plugin decodes it into its own typed struct
// (sdk.Config.Decode), the struct its schema is derived from (sdk.SchemaOf).
//
// A typical host sequence:
//
//	file, err := config.Load(path)              // or config.Config{} without --config
//	c := config.Merge(schema.Defaults(), file)
//	err = config.ApplyFlagTo(c, schema, config.ModeSections(mode), "batch_size", "8")
//	err = config.ApplySet(c, schema, sets)
//	err = schema.Validate(c)
//
// Imported by host/ (the driver and CLI).
package config
