"""Pictures and tables of what a network learned and how it trained.

Training curves, convolution filters, feature maps, vanilla saliency and
Grad-CAM, the confusion matrix and the most confidently misclassified images,
each written as a PNG.  matplotlib (``pip install 'striate[viz]'``) is imported
only when a picture is drawn; without it the drawing functions raise
MissingDependencyError, and the numbers (``saliency``, ``grad_cam``,
``feature_maps``, ...) still work.
"""

from .confusion import plot_confusion, row_normalize
from .curves import curve_series, epoch_curves_writer, plot_curves, read_metrics
from .filters import filter_tiles, first_conv, normalize_per_filter, plot_filters
from .maps import feature_maps, plot_feature_maps
from .misclassified import most_confident_mistakes, plot_misclassified, predict_probs
from .saliency import GradCam, Saliency, grad_cam, plot_grad_cam, plot_saliency, saliency, upsample_bilinear
from .text import confusion_text
from ._layers import capture, get_layer, layer_paths

__all__ = [
    "confusion_text", "plot_confusion", "row_normalize",
    "read_metrics", "curve_series", "plot_curves", "epoch_curves_writer",
    "normalize_per_filter", "filter_tiles", "first_conv", "plot_filters",
    "feature_maps", "plot_feature_maps",
    "Saliency", "GradCam", "saliency", "grad_cam", "upsample_bilinear", "plot_saliency", "plot_grad_cam",
    "predict_probs", "most_confident_mistakes", "plot_misclassified",
    "get_layer", "layer_paths", "capture",
]
