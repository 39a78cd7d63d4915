"""stl: Self-Taught Object Localization (Bazzani, Bergamo, Anguelov, Torresani).

Reference implementation. Layout (detectron2-style separation):

- :mod:`stl.config`       -- the ONE place where every method parameter has its paper default.
- :mod:`stl.modeling`     -- whole-image classifiers (pycaffe, Caffe-in-PyTorch, EfficientNet-Lite0).
- :mod:`stl.segmentation` -- initial regions (Felzenszwalb, Selective Search "fast" set).
- :mod:`stl.similarity`   -- Eq. 1-4 of the paper (drops and the four similarity terms).
- :mod:`stl.localization` -- the agglomerative STL-CL / STL-WL procedure (Sec. 3).
- :mod:`stl.boxes`        -- IoU and non-maximum suppression.
- :mod:`stl.data`         -- datasets (one factory).
- :mod:`stl.evaluation`   -- the paper's recall/precision protocol.
- :mod:`stl.proposals`    -- registry of proposal methods compared in Fig. 3.
"""
__version__ = "0.1.0"
