"""byzsgd: SGD with several parameter servers and workers, none of them trusted."""

from byzsgd.api import resume, run
from byzsgd.config import Config, ConfigError

__all__ = ["Config", "ConfigError", "__version__", "resume", "run"]

__version__ = "0.1.0"
