"""infogan: InfoGAN in PyTorch, a library and a command-line tool.

    import infogan
    model = infogan.load("runs/tutorial")
    x = model.generate(25, codes={"c1": 3})
    infogan.save_grid(x, "threes.png", nrow=5)
"""

from .codes import Categorical, CodeSpec, Gaussian, Uniform
from .errors import InfoganError
from .model import InfoGAN, load
from .sampling import save_grid
from .train import TrainConfig

__all__ = ["Categorical", "CodeSpec", "Gaussian", "InfoGAN", "InfoganError", "TrainConfig",
           "Uniform", "load", "save_grid"]
__version__ = "0.1.0"
