"""The one exception type of bad configuration."""


class ConfigError(ValueError):
    """A bad config key or value. The message names the key, the bad value and what is allowed."""
