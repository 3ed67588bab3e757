"""Subnets as data: export, load and validate fixed subnets."""
