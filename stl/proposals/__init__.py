"""Registry of window-proposal methods (everything Fig. 3 compares).

A method turns an image into ranked windows: ``propose(image, labels=None,
image_id=None) -> (boxes, scores)`` with boxes in original-image pixels
(pixel-inclusive ``[x0, y0, x1, y1]``) sorted best first. ``propose_batch`` lets a
method share work across images (STL batches classifier forwards across them).

Every method DECLARES what it needs (class attributes of :class:`ProposalMethod`, or
``register_method(name, uses_classifier=..., ...)`` for a factory function):
``uses_classifier`` (give it ``classifier=``; its name goes into stored-run keys),
``needs_label`` (STL-CL: the image's ground-truth class), ``needs_image_id``
(proposals read from files: MCG). The options a factory accepts are its signature's
keywords (or ``options=`` at registration); any other option is an error naming the
valid ones. Build one with ``build_method(name, classifier=..., **options)``; add one
with ``@register_method(name)``.
"""
from __future__ import annotations

import inspect
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..core.boxes import sort_by_score
from ..registry import Registry, check_options

#: what a method declares about itself
TRAITS = ("uses_classifier", "needs_label", "needs_image_id")

#: method name -> factory(**options) -> ProposalMethod
METHODS: Registry = Registry("proposal method", builtin=tuple(
    f"{__name__}.{m}" for m in ("stl_methods", "opencv_methods", "selective_search", "cnn_baselines", "precomputed",
                                "fusion", "stlplus")))


class ProposalMethod:
    """Base class. Subclasses implement :meth:`propose` and declare the traits they need."""

    name: str = "method"
    #: does it run the classifier (``classifier=`` option; its name goes into stored-run keys)?
    uses_classifier: bool = False
    #: does it need the ground-truth class(es) of the image (STL-CL)?
    needs_label: bool = False
    #: does it need the image's id (windows read from per-image files: MCG)?
    needs_image_id: bool = False

    def propose(self, image: np.ndarray, labels=None, image_id: Optional[str] = None
                ) -> Tuple[np.ndarray, np.ndarray]:
        """Ranked windows of one image.

        Parameters
        ----------
        image : ndarray (H, W, 3)
            RGB pixels, 0..255.
        labels : sequence of str, optional
            The image's ground-truth class(es) (methods that declare ``needs_label``: STL-CL).
        image_id : str, optional
            The dataset's image id (methods that declare ``needs_image_id``: MCG).

        Returns
        -------
        boxes : ndarray (K, 4)
            Pixel-inclusive ``[x0, y0, x1, y1]`` in the image's pixels, best first.
        scores : ndarray (K,)
            Their scores, non-increasing.
        """
        raise NotImplementedError

    def propose_batch(self, images: Sequence[np.ndarray], labels: Optional[Sequence] = None,
                      image_ids: Optional[Sequence[str]] = None, on_done: Optional[Callable] = None
                      ) -> List[Tuple[np.ndarray, np.ndarray]]:
        """:meth:`propose` on each image (override to share work across images, as STL shares
        classifier batches).

        Parameters
        ----------
        images : sequence of ndarray (H, W, 3)
            RGB pixels, 0..255.
        labels : sequence, optional
            One entry per image (see :meth:`propose`).
        image_ids : sequence of str, optional
            One entry per image (see :meth:`propose`).
        on_done : callable, optional
            ``on_done(i, (boxes, scores))`` is called the moment image ``i`` is finished, before
            the next one is started (the runner stores the image then; an override that shares
            work across images calls it as soon as each image is done -- or does not take it,
            and the runner stores the images when the call returns).

        Returns
        -------
        list of (boxes, scores)
            One :meth:`propose` result per image, in order.
        """
        labels = labels if labels is not None else [None] * len(images)
        image_ids = image_ids if image_ids is not None else [None] * len(images)
        if len(labels) != len(images) or len(image_ids) != len(images):
            raise ValueError("labels and image_ids need one entry per image")
        out = []
        for k, (im, lab, i) in enumerate(zip(images, labels, image_ids)):
            out.append(self.propose(im, lab, image_id=i))
            if on_done is not None:
                on_done(k, out[-1])
        return out

    def describe(self) -> str:
        """One line saying what the method is (stored with its runs)."""
        return self.name


def takes_on_done(method) -> bool:
    """Whether ``method.propose_batch`` accepts ``on_done`` (reports each image as it finishes).

    Parameters
    ----------
    method : ProposalMethod

    Returns
    -------
    bool
    """
    try:
        params = inspect.signature(method.propose_batch).parameters
    except (TypeError, ValueError):  # pragma: no cover - a builtin or odd callable
        return False
    return "on_done" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def propose_batch(method, images: Sequence[np.ndarray], labels: Optional[Sequence] = None,
                  image_ids: Optional[Sequence[str]] = None, on_done: Optional[Callable] = None) -> List:
    """``method.propose_batch(images, labels, image_ids=...)`` with ``on_done(i, (boxes, scores))`` called
    for every image: by the method the moment it finishes the image when its ``propose_batch`` takes
    ``on_done`` (:func:`takes_on_done`), else for each image once the call returns.

    Parameters
    ----------
    method : ProposalMethod
    images, labels, image_ids : sequence
        As :meth:`ProposalMethod.propose_batch` takes them.
    on_done : callable, optional
        Called once per image (images the method reported are not reported again).

    Returns
    -------
    list of (boxes, scores)
        One per image, in order.
    """
    if on_done is None:
        return list(method.propose_batch(images, labels, image_ids=image_ids))
    reported = set()

    def done(i, result):
        reported.add(i)
        on_done(i, result)

    if takes_on_done(method):
        results = list(method.propose_batch(images, labels, image_ids=image_ids, on_done=done))
    else:
        results = list(method.propose_batch(images, labels, image_ids=image_ids))
    if len(results) != len(images):
        raise ValueError(f"propose_batch returned {len(results)} results for {len(images)} images")
    for i, r in enumerate(results):
        if i not in reported:
            done(i, r)
    return results


Options = Union[Sequence[str], Callable[[], Sequence[str]]]


def _signature_options(factory, name: str) -> Tuple[str, ...]:
    if inspect.isclass(factory) and factory.__init__ is object.__init__:
        return ()
    target = factory.__init__ if inspect.isclass(factory) else factory
    params = list(inspect.signature(target).parameters.values())
    if inspect.isclass(factory):
        params = params[1:]  # self
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        raise TypeError(f"proposal method {name!r}: its factory takes **kwargs; name its options "
                        f"(register_method({name!r}, options=[...])) so a misspelt option is an error")
    return tuple(p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                      inspect.Parameter.KEYWORD_ONLY))


def register_method(name: str, options: Optional[Options] = None, **traits):
    """Decorator (or ``register_method(name)(factory)``): add a method to :data:`METHODS`.

    ``factory``: a :class:`ProposalMethod` subclass (its class attributes give the traits)
    or a function (declare ``uses_classifier=``, ``needs_label=``, ``needs_image_id=``
    here). ``options``: the keyword options it accepts (default: its signature; a
    callable is asked when a method is built)."""
    check_options(f"register_method({name!r})", traits, TRAITS)

    def add(factory):
        info = {t: bool(traits[t]) if t in traits else bool(getattr(factory, t, False)) for t in TRAITS}
        info["options"] = options if options is not None else _signature_options(factory, name)
        METHODS.register(name, factory, **info)
        return factory

    return add


def available_methods() -> List[str]:
    """The registered methods' canonical names, sorted."""
    return METHODS.names()


def method_traits(name: str) -> Dict[str, bool]:
    """``{"uses_classifier": .., "needs_label": .., "needs_image_id": ..}`` as declared."""
    info = METHODS.info(name)
    return {t: info[t] for t in TRAITS}


def method_options(name: str) -> Tuple[str, ...]:
    """The keyword options ``build_method(name, ...)`` accepts."""
    opts = METHODS.info(name)["options"]
    return tuple(opts() if callable(opts) else opts)


def build_method(name: str, **options) -> ProposalMethod:
    """Build a registered method. Common options: ``classifier`` (a
    :class:`stl.models.Classifier`, for STL and the CNN baselines), ``config``
    (an :class:`stl.core.config.STLConfig`). An option the method does not take is a
    ``TypeError`` naming the valid ones."""
    check_options(f"proposal method {METHODS.canonical(name)}", options, method_options(name))
    return METHODS.get(name)(**options)


def build_run_method(name: str, get_classifier: Callable[[], object], config=None) -> ProposalMethod:
    """Build a method once, with the classifier (``get_classifier()``, called only then) if it
    declares ``uses_classifier`` and ``config`` if it takes one (STL)."""
    options = {}
    if method_traits(name)["uses_classifier"]:
        options["classifier"] = get_classifier()
    if config is not None and "config" in method_options(name):
        options["config"] = config
    return build_method(name, **options)


def ranked(boxes, scores) -> Tuple[np.ndarray, np.ndarray]:
    """Sort (boxes, scores) best first, deterministically."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    order = sort_by_score(scores)
    return boxes[order], scores[order]

