"""Layers, containers and losses, with torch.nn's names, arguments and defaults."""

from .. import init
from .activation import *  # noqa: F401,F403
from .blocks import *  # noqa: F401,F403
from .blur import *  # noqa: F401,F403
from .container import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .conv_transpose import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .graph import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .local import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .merge import *  # noqa: F401,F403
from .module import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .parameter import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .roi import *  # noqa: F401,F403
