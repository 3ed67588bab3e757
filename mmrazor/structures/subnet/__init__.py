"""Subnets as data: export, load and validate fixed subnets."""
from .fix_subnet import (SubnetError, collect_mutables, dump_subnet_yaml,
                         export_fix_subnet, load_fix_subnet, load_subnet_yaml,
                         normalize_subnet)

__all__ = [
    'SubnetError', 'collect_mutables', 'dump_subnet_yaml', 'export_fix_subnet',
    'load_fix_subnet', 'load_subnet_yaml', 'normalize_subnet'
]
