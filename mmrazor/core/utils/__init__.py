"""Engine utilities."""
from .bn_calibration import recalibrate_bn
from .dist_utils import all_gather_objects, broadcast_object_list, get_dist_info
from .lr import set_lr

__all__ = [
    'broadcast_object_list', 'all_gather_objects', 'get_dist_info',
    'recalibrate_bn', 'set_lr'
]
