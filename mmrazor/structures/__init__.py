"""Subnets as data: export, load and validate fixed subnets, read and write
subnet files; the interface of searchable decisions that subnet files and
cost models rely on."""
from mmrazor.utils.typing import DumpChosen, chosen_of
from .searchable import (InvalidChoiceError, MutableFixedError, Searchable,
                         is_decision)
from .subnet import (CHANNEL_ATTRS, VIEWS, SubnetError, collect_mutables,
                     detect_view, dump_subnet, dump_subnet_yaml,
                     export_fix_subnet, load_fix_subnet, load_subnet,
                     load_subnet_yaml, to_flat, to_plain, to_view)

__all__ = [
    'SubnetError', 'collect_mutables', 'export_fix_subnet', 'load_fix_subnet',
    'load_subnet', 'dump_subnet', 'to_flat', 'to_view', 'to_plain',
    'detect_view', 'VIEWS', 'CHANNEL_ATTRS', 'load_subnet_yaml',
    'dump_subnet_yaml', 'MutableFixedError', 'Searchable', 'is_decision',
    'InvalidChoiceError', 'DumpChosen', 'chosen_of'
]
