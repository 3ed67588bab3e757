"""mmrazor: model compression (NAS, pruning, distillation) on mmengine."""
from .utils import checkpoint as _checkpoint
from .version import __version__, version_info

# mmengine's checkpoint loading breaks on torch >= 2.6 (weights_only); make it
# load safely, and make its local writes atomic, for every user of mmrazor.
_checkpoint.install()

__all__ = ['__version__', 'version_info']
