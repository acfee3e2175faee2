"""tsgen: models, data and metrics for partially observed time series.

The package behind the tsgen book. Each research system is a subpackage; the
book's notebooks import them and never hold model code themselves.
"""

__version__ = "0.1.0"
