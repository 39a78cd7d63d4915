"""Detectors trained on proposal boxes: the paper's Sec. 4 ("Generating
annotations for training detectors"), Tables 1-2 and Figure 6.

Modules: :mod:`.config` (every size and threshold, paper values as defaults),
:mod:`.data` (training/test images per class; ILSVRC-2012 train adapter),
:mod:`.proposals` (windows via the runner's stored runs), :mod:`.features`
(R-CNN-style window features and their HDF5 cache), :mod:`.sampling`
(positives, negatives, hard-negative mining), :mod:`.svm` (linear SVM, C by
cross-validated AP), :mod:`.evaluation` (VOC 2007 11-point AP),
:mod:`.pipeline` (the resumable experiment), :mod:`.report` (tables, figure,
diff against the paper) and :mod:`.cli` (the experiment scripts' command line).
See docs/detection.md.
"""
from .config import PAPER, DataConfig, DetectionConfig, FeatureConfig, SVMConfig  # noqa: F401
from .evaluation import average_precision, mean_ap, voc07_ap  # noqa: F401
from .sampling import mine_hard_negatives, negatives_from_positive_image, random_negatives  # noqa: F401
from .svm import LinearModel, select_c, train_svm  # noqa: F401
