"""Subnets as data: export, load and validate fixed subnets; the interface
of searchable decisions that subnet files and cost models rely on."""
from .searchable import MutableFixedError, Searchable, is_decision
from .subnet import (SubnetError, collect_mutables, dump_subnet_yaml,
                     export_fix_subnet, load_fix_subnet, load_subnet_yaml,
                     normalize_subnet)

__all__ = [
    'SubnetError', 'collect_mutables', 'dump_subnet_yaml', 'export_fix_subnet',
    'load_fix_subnet', 'load_subnet_yaml', 'normalize_subnet',
    'MutableFixedError', 'Searchable', 'is_decision'
]
