"""Models of mmrazor: search spaces, algorithms, pruners and distillers."""
from .algorithms import *  # noqa: F401,F403
from .architectures import *  # noqa: F401,F403
from .distillers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .mutables import *  # noqa: F401,F403
from .mutators import *  # noqa: F401,F403
from .ops import *  # noqa: F401,F403
from .pruners import *  # noqa: F401,F403
from .quantizers import *  # noqa: F401,F403
from .task_modules import *  # noqa: F401,F403
