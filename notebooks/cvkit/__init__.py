"""cvkit: the small helpers module shared by the three labs of the kit."""

from .camera import *  # noqa: F401,F403
from .classify import *  # noqa: F401,F403
from .core import *  # noqa: F401,F403
from .detect import *  # noqa: F401,F403
from .download import *  # noqa: F401,F403
from .weights import *  # noqa: F401,F403
from .zeroshot import *  # noqa: F401,F403
