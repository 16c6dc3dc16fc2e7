"""Editors against a provisioned host: model roles, FIM support, and editor configuration."""
