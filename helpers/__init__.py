"""Super-convergence training of ResNet-9 on CIFAR-10 (one-cycle policy, batch 512)."""
from .config import CIFAR10_CLASSES, TrainConfig
from .errors import UserError
from .model import ResNet9

__all__ = ["CIFAR10_CLASSES", "ResNet9", "TrainConfig", "UserError"]
__version__ = "0.1.0"
