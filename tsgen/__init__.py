"""tsgen: models, data and metrics for partially observed time series.

The package behind the tsgen book. Each research system is a subpackage; the
book's notebooks import them and never hold model code themselves.
"""

import warnings

__version__ = "0.1.0"

# Notebooks here run without ipywidgets, so tqdm.auto falls back to text bars
# (what papermill and the book show); its warning about that is noise.
warnings.filterwarnings("ignore", message="IProgress not found")
