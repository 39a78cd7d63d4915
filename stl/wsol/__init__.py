"""STL on the weakly-supervised object localization (WSOL) benchmark of Choe et al. (CVPR 2020).

* :mod:`stl.wsol.metrics` -- Top-1 Loc, GT-known Loc, MaxBoxAcc, MaxBoxAccV2 (wsolevaluation's definitions)
* :mod:`stl.wsol.heatmaps` -- CAM, Grad-CAM, RISE and STL's windows as class-specific heatmaps
* :mod:`stl.wsol.stlplus` -- STL+: re-ranking STL's top windows so that the first one is better
* :mod:`stl.experiments.wsol` -- the ``stl wsol`` pipeline (score maps on disk, table, figure)
"""
