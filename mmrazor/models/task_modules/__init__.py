"""task_modules of mmrazor."""
from .estimators import *  # noqa: F401,F403
from .channel_analysis import *  # noqa: F401,F403
from .deploy import *  # noqa: F401,F403
from .importance import *  # noqa: F401,F403
from .recorder import *  # noqa: F401,F403
