"""stl: Self-Taught Object Localization (Bazzani, Bergamo, Anguelov, Torresani, WACV 2016).

Reference implementation. Layers (docs/architecture.md; imports point down only):

- :mod:`stl.cli`          -- the ``stl`` command (one module per subcommand, one argument module).
- :mod:`stl.experiments`  -- Fig. 3, Tables 1-2, Fig. 6, STL vs trivial references, benchmarks.
- :mod:`stl.runner`, :mod:`stl.evaluation`, :mod:`stl.detection` -- resumable runs, the paper's
  recall/precision protocol, the detector experiments of Sec. 4.
- :mod:`stl.proposals`, :mod:`stl.data` -- the proposal methods of Fig. 3; datasets.
- :mod:`stl.core`         -- the method: config (every default), boxes, segmentation, Eq. 1-4
  (similarity), the agglomerative STL-CL / STL-WL procedure (localization, Sec. 3).
- :mod:`stl.models`       -- whole-image classifiers (EfficientNet-Lite0, Caffe nets in PyTorch or pycaffe).
"""
__version__ = "0.1.0"
