"""tierserve: the cheapest model that reliably clears the bar, on your own GPUs.

Importing the package imports no Ray, vLLM or torch: the policy core stays light.
"""

from tierserve.config import CascadeConfig, GatewayConfig, StackConfig, TierConfig, load_config
from tierserve.errors import (
    ConfigError,
    InvalidRequestError,
    ModelNotPreparedError,
    TierError,
    TierserveError,
    TierTimeoutError,
    TierUnavailableError,
)

__version__ = "0.1.0"

__all__ = [
    "CascadeConfig",
    "ConfigError",
    "GatewayConfig",
    "InvalidRequestError",
    "ModelNotPreparedError",
    "StackConfig",
    "TierConfig",
    "TierError",
    "TierTimeoutError",
    "TierUnavailableError",
    "TierserveError",
    "__version__",
    "load_config",
]
