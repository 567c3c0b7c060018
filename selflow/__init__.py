"""selflow: a dataflow dispatcher on top of Celery, configured in Selinon-format YAML."""

from selflow.errors import FatalTaskError, SelflowError
from selflow.task import Retry, SelflowTask, SelinonTask

__version__ = "0.1.0"

__all__ = [
    # tasks
    "SelflowTask", "SelinonTask", "FatalTaskError", "Retry",
    # errors
    "SelflowError",
]
