"""The one exception type of bad configuration (defined by the engine, which raises it too)."""
from engine.errors import ConfigError

__all__ = ["ConfigError"]
