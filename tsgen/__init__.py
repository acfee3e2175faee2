"""tsgen: models, data and metrics for partially observed time series.

The package behind the tsgen book, from the bottom up: :mod:`tsgen.runtime`
(devices, seeding, quieting, progress) and :mod:`tsgen.config` (the JSON
round-trip and field validators) -> :mod:`tsgen.estimator` (the one estimator
contract and checkpoint format) -> :mod:`tsgen.data` -> the systems
(:mod:`tsgen.imputation`, :mod:`tsgen.adaptation`, :mod:`tsgen.forecasting`,
:mod:`tsgen.generation`, each config -> network -> estimator -> experiments)
and :mod:`tsgen.metrics` -> :mod:`tsgen.book` on top, which nothing below imports.
"""

__version__ = "0.1.0"
