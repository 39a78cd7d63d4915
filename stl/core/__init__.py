"""The method of the paper: parameters with their defaults (:mod:`.config`), boxes and IoU
(:mod:`.boxes`), initial regions (:mod:`.segmentation`), Eq. 1-4 (:mod:`.similarity`) and the
agglomerative STL-CL / STL-WL procedure of Sec. 3 (:mod:`.localization`).

Imports only NumPy/OpenCV/scikit-image, :mod:`stl.io` and the :mod:`stl.models` interfaces."""
