"""The model zoo: classic CNNs by name, built from striate.nn layers.

    from striate import models
    models.list_models()                       # ['alexnet', 'alexnet_2012', ...]
    net = models.get_model("resnet18", num_classes=10)
    net.zoo_spec                               # how it was built, to rebuild it later

Every builder takes ``num_classes`` and ``in_channels`` first, then keyword-only
family options, ``dtype`` and ``rng``; the torchvision families (AlexNet, VGG,
ResNet, GoogLeNet) have torchvision's state-dict keys, parameter counts and
weight init.
"""

from __future__ import annotations

from .registry import get_model, list_models, model_signature, model_table, register
from .alexnet import *  # noqa: F401,F403
from .fashion import *  # noqa: F401,F403
from .googlenet import *  # noqa: F401,F403
from .lenet import *  # noqa: F401,F403
from .mobilenet import *  # noqa: F401,F403
from .resnet import *  # noqa: F401,F403
from .tdnn import *  # noqa: F401,F403
from .traffic import *  # noqa: F401,F403
from .vgg import *  # noqa: F401,F403
from .alexnet import __all__ as _alexnet_all
from .fashion import __all__ as _fashion_all
from .googlenet import __all__ as _googlenet_all
from .lenet import __all__ as _lenet_all
from .mobilenet import __all__ as _mobilenet_all
from .resnet import __all__ as _resnet_all
from .tdnn import __all__ as _tdnn_all
from .traffic import __all__ as _traffic_all
from .vgg import __all__ as _vgg_all

# A family's module name may equal a builder's (alexnet, tdnn): the attribute is the
# builder, as in torchvision.models; the module stays importable by its full name.
__all__ = ["get_model", "list_models", "model_signature", "model_table", "register",
           *_alexnet_all, *_fashion_all, *_googlenet_all, *_lenet_all, *_mobilenet_all,
           *_resnet_all, *_tdnn_all, *_traffic_all, *_vgg_all]
