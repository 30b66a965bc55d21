"""Utilities around the core: data loading, CoNLL reading, NER metrics, word vectors, progress bars.

    from tapegrad.utils.data import TensorDataset, DataLoader
    from tapegrad.utils.conll import read_conll
    from tapegrad.utils.metrics import entity_scores
    from tapegrad.utils.wordvec import load_word_vectors, build_embedding_matrix
    from tapegrad.utils.progress import progress
"""

from . import conll, data, metrics, progress, wordvec  # noqa: F401
from .conll import read_conll
from .data import DataLoader, Dataset, TensorDataset
from .metrics import entity_scores, get_entities
from .wordvec import build_embedding_matrix, load_word_vectors

__all__ = [
    "conll", "data", "metrics", "progress", "wordvec",
    "read_conll", "DataLoader", "Dataset", "TensorDataset",
    "entity_scores", "get_entities", "load_word_vectors", "build_embedding_matrix",
]
