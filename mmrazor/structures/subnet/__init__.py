"""Subnets as data: export, load and validate fixed subnets; the one reader
and writer of subnet files."""
from .fix_subnet import collect_mutables, export_fix_subnet, load_fix_subnet
from .subnet_file import (CHANNEL_ATTRS, VIEWS, SubnetError, detect_view,
                          dump_subnet, dump_subnet_yaml, load_subnet,
                          load_subnet_yaml, to_flat, to_plain, to_view)

__all__ = [
    'SubnetError', 'collect_mutables', 'export_fix_subnet', 'load_fix_subnet',
    'load_subnet', 'dump_subnet', 'to_flat', 'to_view', 'to_plain',
    'detect_view', 'VIEWS', 'CHANNEL_ATTRS', 'load_subnet_yaml',
    'dump_subnet_yaml'
]
