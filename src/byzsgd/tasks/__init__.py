"""Learning tasks: data sets split across workers and flat-parameter models.

:func:`build_task` is the entry point; the protocol only uses :class:`Task` and
:class:`FlatModel`.
"""

from byzsgd.tasks.models import MODELS, FlatModel, build_model
from byzsgd.tasks.partition import SPLITS
from byzsgd.tasks.task import TASKS, Task, build_task

__all__ = [
    "MODELS",
    "SPLITS",
    "TASKS",
    "FlatModel",
    "Task",
    "build_model",
    "build_task",
]
