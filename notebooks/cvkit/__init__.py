"""cvkit: the helpers the labs share. This lists what the notebooks use; the rest stays in its module."""

from .camera import camera_photo, colab_camera_frame, has_display, local_camera_available
from .classify import (
    check_convolution,
    check_gradcam,
    check_top5,
    classification_scorecard,
    highlight_hits,
    pad_to_keep_whole,
    show_cams,
    show_crops,
    show_feature_maps,
    show_heatmap,
    to_picture,
    top5_table,
)
from .closing import check_classify_regions, check_template_shift
from .data import DATA_DIR, read_class_sets, read_labels, sample_images
from .detect import check_box_iou, check_count_threshold, draw_boxes, show_score_maps, timed_runs
from .env import device_report, in_colab, in_kaggle, pick_device, pick_dtype
from .errors import KitError
from .images import load_image
from .notebook import setup_notebook
from .plots import show_grid
from .weights import explain_load_errors, explain_oom, locate_weights
from .zeroshot import (
    check_sigmoid_scores,
    check_softmax_scores,
    image_features,
    plot_heatmap,
    text_features,
    tokenize_prompts,
)

__all__ = [
    "KitError", "setup_notebook",
    "in_colab", "in_kaggle", "pick_device", "pick_dtype", "device_report",
    "DATA_DIR", "sample_images", "read_labels", "read_class_sets", "load_image", "show_grid",
    "locate_weights", "explain_load_errors", "explain_oom",
    "camera_photo", "colab_camera_frame", "has_display", "local_camera_available",
    "to_picture", "show_crops", "pad_to_keep_whole", "top5_table", "classification_scorecard", "highlight_hits",
    "show_heatmap", "show_feature_maps", "show_cams", "check_convolution", "check_top5", "check_gradcam",
    "draw_boxes", "show_score_maps", "timed_runs", "check_box_iou", "check_count_threshold",
    "check_classify_regions", "check_template_shift",
    "tokenize_prompts", "image_features", "text_features", "plot_heatmap", "check_sigmoid_scores", "check_softmax_scores",
]
