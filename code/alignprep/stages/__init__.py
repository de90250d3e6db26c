"""Pipeline stages: each takes the config and typed inputs, returns what it wrote."""
