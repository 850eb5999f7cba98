"""ssd_core: machine unlearning for image classifiers (SSD, LFSSD and friends), UI-free.

Typical use::

    from ssd_core import data, train, methods, metrics
    ds = data.load_dataset("digits")
    original = train.load_or_train(ds, "smallcnn").model
    split = data.make_split(ds, data.ForgetRequest("class", 3))
    result = methods.run_method("ssd", original, split, alpha=10, lam=1)
    print(metrics.evaluate(result.model, split).summary())
"""

from .errors import InputError

__version__ = "0.1.0"
__all__ = ["InputError", "__version__"]
